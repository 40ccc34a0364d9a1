// Loads an electra_tf export the way TF Serving does (tensorflow::LoadSavedModel,
// tag "serve") and runs its signatures, printing every output.
//
//   load_saved_model EXPORT_DIR OP_LIBS TEXT_FILE [IDS_FILE]
//
// OP_LIBS: comma-separated op libraries to load first (tensorflow-text's
// _fast_bert_normalizer.so and _fast_wordpiece_tokenizer.so for the text
// signature), or "-" for none. TEXT_FILE: one input per line for
// serving_default's `text` (a TAB splits `text` from `text_b` for pair
// models; also `fill_mask`'s input when the export has that signature).
// IDS_FILE: rows "ids;mask;segments" (space-separated ints) for predict_ids.
// Output lines: SIGNATURE<TAB>OUTPUT<TAB>SHAPE<TAB>VALUES.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/env.h"

namespace {

using tensorflow::Tensor;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream stream(s);
  std::string part;
  while (std::getline(stream, part, sep)) parts.push_back(part);
  return parts;
}

std::string Format(const Tensor& t) {
  std::ostringstream out;
  const int64_t n = t.NumElements();
  for (int64_t i = 0; i < n; ++i) {
    if (i) out << ' ';
    switch (t.dtype()) {
      case tensorflow::DT_FLOAT: {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.9g", t.flat<float>()(i));
        out << buf;
        break;
      }
      case tensorflow::DT_INT32: out << t.flat<int32_t>()(i); break;
      case tensorflow::DT_INT64: out << t.flat<int64_t>()(i); break;
      case tensorflow::DT_BOOL: out << (t.flat<bool>()(i) ? 1 : 0); break;
      case tensorflow::DT_STRING: {
        std::string s(t.flat<tensorflow::tstring>()(i));
        std::replace(s.begin(), s.end(), ' ', '\x1f');  // keep values space-separated
        out << (s.empty() ? "\x1e" : s);
        break;
      }
      default: out << "?";
    }
  }
  return out.str();
}

int Run(tensorflow::SavedModelBundle& bundle, const std::string& name,
        const std::vector<std::pair<std::string, Tensor>>& named_inputs) {
  const auto& signatures = bundle.meta_graph_def.signature_def();
  auto it = signatures.find(name);
  if (it == signatures.end()) {
    std::cerr << "no signature " << name << "\n";
    return 1;
  }
  std::vector<std::pair<std::string, Tensor>> feeds;
  for (const auto& [key, tensor] : named_inputs) {
    auto input = it->second.inputs().find(key);
    if (input == it->second.inputs().end()) {
      std::cerr << name << " has no input " << key << "\n";
      return 1;
    }
    feeds.emplace_back(input->second.name(), tensor);
  }
  std::vector<std::string> keys, fetches;
  for (const auto& [key, info] : it->second.outputs()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const auto& key : keys) fetches.push_back(it->second.outputs().at(key).name());
  std::vector<Tensor> outputs;
  auto status = bundle.session->Run(feeds, fetches, {}, &outputs);
  if (!status.ok()) {
    std::cerr << name << ": " << status.ToString() << "\n";
    return 1;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    std::cout << name << '\t' << keys[i] << '\t' << outputs[i].shape().DebugString() << '\t'
              << Format(outputs[i]) << '\n';
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: load_saved_model EXPORT_DIR OP_LIBS TEXT_FILE [IDS_FILE]\n";
    return 2;
  }
  if (std::string(argv[2]) != "-") {
    for (const auto& lib : Split(argv[2], ',')) {
      void* handle = nullptr;
      auto status = tensorflow::Env::Default()->LoadDynamicLibrary(lib.c_str(), &handle);
      if (!status.ok()) {
        std::cerr << "cannot load " << lib << ": " << status.ToString() << "\n";
        return 1;
      }
    }
  }
  tensorflow::SavedModelBundle bundle;
  auto status = tensorflow::LoadSavedModel(tensorflow::SessionOptions(), tensorflow::RunOptions(),
                                           argv[1], {"serve"}, &bundle);
  if (!status.ok()) {
    std::cerr << "LoadSavedModel: " << status.ToString() << "\n";
    return 1;
  }
  std::vector<std::string> first, second;
  bool pair = false;
  std::ifstream texts(argv[3]);
  for (std::string line; std::getline(texts, line);) {
    auto tab = line.find('\t');
    pair = pair || tab != std::string::npos;
    first.push_back(line.substr(0, tab));
    second.push_back(tab == std::string::npos ? "" : line.substr(tab + 1));
  }
  auto strings = [](const std::vector<std::string>& values) {
    Tensor t(tensorflow::DT_STRING, tensorflow::TensorShape({(int64_t)values.size()}));
    for (size_t i = 0; i < values.size(); ++i) t.flat<tensorflow::tstring>()(i) = values[i];
    return t;
  };
  std::vector<std::pair<std::string, Tensor>> text_inputs = {{"text", strings(first)}};
  if (pair) text_inputs.emplace_back("text_b", strings(second));
  if (Run(bundle, "serving_default", text_inputs)) return 1;
  // A pre-trained discriminator's export with its generator: fill-mask on the same texts.
  if (bundle.meta_graph_def.signature_def().count("fill_mask") &&
      Run(bundle, "fill_mask", {{"text", strings(first)}}))
    return 1;

  if (argc > 4) {
    std::vector<std::vector<std::vector<int32_t>>> rows;  // [row][ids|mask|segments]
    std::ifstream ids(argv[4]);
    for (std::string line; std::getline(ids, line);) {
      std::vector<std::vector<int32_t>> fields;
      for (const auto& field : Split(line, ';')) {
        std::vector<int32_t> values;
        std::istringstream in(field);
        for (int32_t v; in >> v;) values.push_back(v);
        fields.push_back(values);
      }
      rows.push_back(fields);
    }
    const int64_t batch = rows.size(), length = batch ? rows[0][0].size() : 0;
    std::vector<std::pair<std::string, Tensor>> id_inputs;
    const char* names[] = {"input_ids", "input_mask", "segment_ids"};
    for (int f = 0; f < 3; ++f) {
      Tensor t(tensorflow::DT_INT32, tensorflow::TensorShape({batch, length}));
      auto m = t.matrix<int32_t>();
      for (int64_t r = 0; r < batch; ++r)
        for (int64_t c = 0; c < length; ++c) m(r, c) = rows[r][f][c];
      id_inputs.emplace_back(names[f], t);
    }
    if (Run(bundle, "predict_ids", id_inputs)) return 1;
  }
  return 0;
}
