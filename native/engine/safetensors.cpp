// safetensors: an 8-byte little-endian header length N, N bytes of JSON
// mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the end of the header), then the data.
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "weights.h"

namespace cachesage::engine {

namespace {

struct TensorEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  int64_t begin = -1;
  int64_t end = -1;
};

// The subset of JSON a safetensors header uses, with values other than
// tensor entries skipped.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  std::map<std::string, TensorEntry> parse() {
    std::map<std::string, TensorEntry> tensors;
    expect('{');
    if (peek() == '}') return tensors;
    for (;;) {
      std::string name = string();
      expect(':');
      if (name == "__metadata__") {
        skipValue();
      } else {
        tensors[name] = entry(name);
      }
      if (peek() == ',') {
        pos_++;
        continue;
      }
      expect('}');
      return tensors;
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("safetensors " + file_ + ": malformed header at byte " + std::to_string(pos_) +
                                ": " + what);
  }
  char peek() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) pos_++;
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    pos_++;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\\') {
        if (++pos_ >= s_.size()) break;
        char e = s_[pos_];
        if (e == 'u') fail("\\u escapes are not supported in names");
        out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        out += s_[pos_];
      }
      pos_++;
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    pos_++;
    return out;
  }
  int64_t integer() {
    peek();
    size_t startPos = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') pos_++;
    if (pos_ == startPos || pos_ - startPos > 18) fail("expected a non-negative integer");
    return std::stoll(s_.substr(startPos, pos_ - startPos));
  }
  std::vector<int64_t> integers() {
    std::vector<int64_t> out;
    expect('[');
    if (peek() == ']') {
      pos_++;
      return out;
    }
    for (;;) {
      out.push_back(integer());
      if (peek() == ',') {
        pos_++;
        continue;
      }
      expect(']');
      return out;
    }
  }
  TensorEntry entry(const std::string& name) {
    TensorEntry e;
    expect('{');
    for (;;) {
      std::string key = string();
      expect(':');
      if (key == "dtype") {
        e.dtype = string();
      } else if (key == "shape") {
        e.shape = integers();
      } else if (key == "data_offsets") {
        std::vector<int64_t> offsets = integers();
        if (offsets.size() != 2 || offsets[0] > offsets[1]) fail("tensor " + name + ": data_offsets must be [begin, end]");
        e.begin = offsets[0];
        e.end = offsets[1];
      } else {
        skipValue();
      }
      if (peek() == ',') {
        pos_++;
        continue;
      }
      expect('}');
      break;
    }
    if (e.dtype.empty() || e.begin < 0) fail("tensor " + name + " lacks dtype or data_offsets");
    return e;
  }
  void skipValue() {
    char c = peek();
    if (c == '"') {
      string();
    } else if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      pos_++;
      if (peek() == close) {
        pos_++;
        return;
      }
      for (;;) {
        if (close == '}') {
          string();
          expect(':');
        }
        skipValue();
        if (peek() == ',') {
          pos_++;
          continue;
        }
        expect(close);
        return;
      }
    } else {
      size_t startPos = pos_;
      while (pos_ < s_.size() && std::strchr(",}] \n\r\t", s_[pos_]) == nullptr) pos_++;
      if (pos_ == startPos) fail("expected a value");
    }
  }

  const std::string& s_;
  const std::string& file_;
  size_t pos_ = 0;
};

float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal: normalise the mantissa.
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      shift++;
    }
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw std::invalid_argument("safetensors " + path + ": cannot open the file");
    in_.seekg(0, std::ios::end);
    size_ = static_cast<int64_t>(in_.tellg());
    in_.seekg(0);
    unsigned char lengthBytes[8];
    if (size_ < 8 || !in_.read(reinterpret_cast<char*>(lengthBytes), 8)) {
      throw std::invalid_argument("safetensors " + path + ": the file is truncated (" + std::to_string(size_) +
                                  " bytes, not even the 8-byte header length)");
    }
    uint64_t length = 0;
    for (int i = 7; i >= 0; i--) length = (length << 8) | lengthBytes[i];
    if (length > static_cast<uint64_t>(size_ - 8) || length > (100u << 20)) {
      throw std::invalid_argument("safetensors " + path + ": the header claims " + std::to_string(length) +
                                  " bytes but the file has " + std::to_string(size_ - 8) +
                                  " after the length: the file is truncated or not safetensors");
    }
    std::string header(static_cast<size_t>(length), '\0');
    in_.read(&header[0], static_cast<std::streamsize>(length));
    dataStart_ = 8 + static_cast<int64_t>(length);
    tensors_ = HeaderParser(header, path_).parse();
  }

  // Reads tensor `name` as f32, checking its shape against `shape`.
  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = tensors_.find(name);
    std::string where = "safetensors " + path_ + ": tensor " + name;
    if (it == tensors_.end()) throw std::invalid_argument(where + " is missing");
    const TensorEntry& e = it->second;
    int64_t width = e.dtype == "F32" ? 4 : (e.dtype == "F16" || e.dtype == "BF16") ? 2 : 0;
    if (width == 0) throw std::invalid_argument(where + " has dtype " + e.dtype + ", not one of F32, F16, BF16");
    if (e.shape != shape) {
      throw std::invalid_argument(where + " has shape " + format(e.shape) + ", the model config needs " + format(shape));
    }
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    if (e.end - e.begin != count * width) {
      throw std::invalid_argument(where + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes, shape " +
                                  format(shape) + " of " + e.dtype + " needs " + std::to_string(count * width));
    }
    if (dataStart_ + e.end > size_) {
      throw std::invalid_argument(where + ": its data ends at byte " + std::to_string(dataStart_ + e.end) +
                                  " but the file has " + std::to_string(size_) + " bytes: the file is truncated");
    }
    std::vector<char> raw(static_cast<size_t>(e.end - e.begin));
    in_.seekg(dataStart_ + e.begin);
    if (!in_.read(raw.data(), static_cast<std::streamsize>(raw.size()))) {
      throw std::invalid_argument(where + ": reading its data failed");
    }
    std::vector<float> out(static_cast<size_t>(count));
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(raw.data());
    for (int64_t i = 0; i < count; i++) {
      const unsigned char* p = bytes + i * width;
      if (width == 4) {
        uint32_t bits = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
        std::memcpy(&out[static_cast<size_t>(i)], &bits, 4);
      } else {
        uint16_t half = static_cast<uint16_t>(p[0] | (p[1] << 8));
        if (e.dtype == "F16") {
          out[static_cast<size_t>(i)] = halfToFloat(half);
        } else {
          uint32_t bits = static_cast<uint32_t>(half) << 16;
          std::memcpy(&out[static_cast<size_t>(i)], &bits, 4);
        }
      }
    }
    return out;
  }

 private:
  static std::string format(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }

  std::string path_;
  std::ifstream in_;
  int64_t size_ = 0;
  int64_t dataStart_ = 0;
  std::map<std::string, TensorEntry> tensors_;
};

}  // namespace

Weights loadSafetensors(const ModelConfig& c, const std::string& path) {
  validateConfig(c);
  SafetensorsFile file(path);
  const int64_t d = c.modelDim, kv = c.kvDim(), f = c.ffnDim;
  Weights w;
  w.embedding = file.read("model.embed_tokens.weight", {c.vocab, d});
  for (int32_t l = 0; l < c.layers; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights layer;
    layer.attentionNorm = file.read(p + "input_layernorm.weight", {d});
    layer.wq = file.read(p + "self_attn.q_proj.weight", {d, d});
    layer.wk = file.read(p + "self_attn.k_proj.weight", {kv, d});
    layer.wv = file.read(p + "self_attn.v_proj.weight", {kv, d});
    layer.wo = file.read(p + "self_attn.o_proj.weight", {d, d});
    layer.mlpNorm = file.read(p + "post_attention_layernorm.weight", {d});
    layer.wGate = file.read(p + "mlp.gate_proj.weight", {f, d});
    layer.wUp = file.read(p + "mlp.up_proj.weight", {f, d});
    layer.wDown = file.read(p + "mlp.down_proj.weight", {d, f});
    w.layers.push_back(std::move(layer));
  }
  w.finalNorm = file.read("model.norm.weight", {d});
  if (!c.tiedEmbeddings) w.outputHead = file.read("lm_head.weight", {c.vocab, d});
  return w;
}

}  // namespace cachesage::engine
