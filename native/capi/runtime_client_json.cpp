// JSON for the runtime client: see runtime_client_json.h.
#include "runtime_client_json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

namespace cachesage::capi {

namespace {

// Replies nest three levels at most; anything deeper is not the sidecar.
constexpr int kMaxDepth = 32;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  JsonValue document() {
    JsonValue v = value(0);
    skipSpace();
    if (pos_ != text_.size()) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ProtocolError("reply is not valid JSON: " + what + " at byte " + std::to_string(pos_));
  }

  void skipSpace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  char peek() {
    if (pos_ >= text_.size()) fail("unexpected end");
    return text_[pos_];
  }

  void expectWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) fail("unknown literal");
    pos_ += word.size();
  }

  JsonValue value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    skipSpace();
    JsonValue v;
    const char c = peek();
    if (c == '{') {
      v.kind = JsonValue::Kind::Object;
      object(v, depth);
    } else if (c == '[') {
      v.kind = JsonValue::Kind::Array;
      array(v, depth);
    } else if (c == '"') {
      v.kind = JsonValue::Kind::String;
      v.string = string();
    } else if (c == 't') {
      expectWord("true");
      v.kind = JsonValue::Kind::Bool;
      v.boolean = true;
    } else if (c == 'f') {
      expectWord("false");
      v.kind = JsonValue::Kind::Bool;
    } else if (c == 'n') {
      expectWord("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = JsonValue::Kind::Number;
      v.number = number();
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  void object(JsonValue& v, int depth) {
    ++pos_;  // '{'
    skipSpace();
    if (peek() == '}') {
      ++pos_;
      return;
    }
    for (;;) {
      skipSpace();
      if (peek() != '"') fail("expected a member name");
      std::string name = string();
      if (v.find(name) != nullptr) fail("duplicate member \"" + name + "\"");
      skipSpace();
      if (peek() != ':') fail("expected ':'");
      ++pos_;
      v.members.emplace_back(std::move(name), value(depth + 1));
      skipSpace();
      const char c = peek();
      ++pos_;
      if (c == '}') return;
      if (c != ',') fail("expected ',' or '}'");
    }
  }

  void array(JsonValue& v, int depth) {
    ++pos_;  // '['
    skipSpace();
    if (peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      v.items.push_back(value(depth + 1));
      skipSpace();
      const char c = peek();
      ++pos_;
      if (c == ']') return;
      if (c != ',') fail("expected ',' or ']'");
    }
  }

  unsigned hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      code <<= 4;
      if (c >= '0' && c <= '9')
        code |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        code |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        code |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return code;
  }

  static void appendUtf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::string string() {
    ++pos_;  // '"'
    std::string out;
    for (;;) {
      const char c = peek();
      ++pos_;
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned code = hex4();
          if (code >= 0xD800 && code <= 0xDBFF) {
            // A high surrogate must be followed by its low half.
            if (text_.substr(pos_, 2) != "\\u") fail("unpaired surrogate");
            pos_ += 2;
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("unpaired surrogate");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          } else if (code >= 0xDC00 && code <= 0xDFFF) {
            fail("unpaired surrogate");
          }
          appendUtf8(out, code);
          break;
        }
        default:
          fail("bad escape");
      }
    }
  }

  double number() {
    // The RFC 8259 grammar first: from_chars alone would accept "01" or "1.".
    const size_t start = pos_;
    auto digits = [&]() {
      const size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (text_[pos_] == '-') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      fail("bad number");
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail("bad number");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("bad number");
    }
    double out = 0;
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    const auto [end, ec] = std::from_chars(first, last, out);
    if (ec != std::errc() || end != last || !std::isfinite(out)) fail("number out of range");
    return out;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

const char* kindName(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::Null:
      return "null";
    case JsonValue::Kind::Bool:
      return "a boolean";
    case JsonValue::Kind::Number:
      return "a number";
    case JsonValue::Kind::String:
      return "a string";
    case JsonValue::Kind::Array:
      return "an array";
    case JsonValue::Kind::Object:
      return "an object";
  }
  return "unknown";
}

[[noreturn]] void wrongField(const std::string& where, std::string_view key, const char* wanted,
                             const JsonValue& got) {
  throw ProtocolError(where + ": field \"" + std::string(key) + "\" must be " + wanted + ", got " +
                      kindName(got.kind));
}

}  // namespace

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const auto& [name, value] : members) {
    if (name == key) return &value;
  }
  return nullptr;
}

JsonValue parseJson(std::string_view text) { return Parser(text).document(); }

const JsonValue& member(const JsonValue& object, std::string_view key, const std::string& where) {
  if (object.kind != JsonValue::Kind::Object) {
    throw ProtocolError(where + ": must be a JSON object, got " + kindName(object.kind));
  }
  const JsonValue* v = object.find(key);
  if (v == nullptr) throw ProtocolError(where + ": field \"" + std::string(key) + "\" is missing");
  return *v;
}

bool boolMember(const JsonValue& object, std::string_view key, const std::string& where) {
  const JsonValue& v = member(object, key, where);
  if (v.kind != JsonValue::Kind::Bool) wrongField(where, key, "a boolean", v);
  return v.boolean;
}

double numberMember(const JsonValue& object, std::string_view key, const std::string& where) {
  const JsonValue& v = member(object, key, where);
  if (v.kind != JsonValue::Kind::Number) wrongField(where, key, "a number", v);
  return v.number;
}

int64_t intValue(const JsonValue& value, int64_t min, int64_t max, const std::string& where) {
  // Compared as doubles before the cast: a cast of an out-of-range double is undefined.
  if (value.kind != JsonValue::Kind::Number || value.number != std::floor(value.number) ||
      value.number < static_cast<double>(min) || value.number > static_cast<double>(max)) {
    throw ProtocolError(where + " must be an integer in [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
  }
  return static_cast<int64_t>(value.number);
}

int64_t intMember(const JsonValue& object, std::string_view key, int64_t min, int64_t max,
                  const std::string& where) {
  return intValue(member(object, key, where), min, max,
                  where + ": field \"" + std::string(key) + "\"");
}

const std::string& stringMember(const JsonValue& object, std::string_view key,
                                const std::string& where) {
  const JsonValue& v = member(object, key, where);
  if (v.kind != JsonValue::Kind::String) wrongField(where, key, "a string", v);
  return v.string;
}

std::vector<int32_t> intArrayMember(const JsonValue& object, std::string_view key, int64_t min,
                                    int64_t max, const std::string& where) {
  const JsonValue& v = member(object, key, where);
  if (v.kind != JsonValue::Kind::Array) wrongField(where, key, "an array", v);
  std::vector<int32_t> out;
  out.reserve(v.items.size());
  for (size_t i = 0; i < v.items.size(); ++i) {
    out.push_back(static_cast<int32_t>(intValue(
        v.items[i], min, max, where + ": " + std::string(key) + "[" + std::to_string(i) + "]")));
  }
  return out;
}

// ------------------------------------------------------------- writer

void JsonWriter::separate() {
  if (afterKey_) {
    afterKey_ = false;
    return;
  }
  if (!nonEmpty_.empty()) {
    if (nonEmpty_.back()) out_ += ',';
    nonEmpty_.back() = true;
  }
}

JsonWriter& JsonWriter::beginObject() {
  separate();
  out_ += '{';
  nonEmpty_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  out_ += '}';
  nonEmpty_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  separate();
  out_ += '[';
  nonEmpty_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  out_ += ']';
  nonEmpty_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  string(name);
  out_ += ':';
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view value) {
  separate();
  out_ += '"';
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out_ += '\\';
      out_ += c;
    } else if (u < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", u);
      out_ += escape;
    } else {
      out_ += c;
    }
  }
  out_ += '"';
  return *this;
}

JsonWriter& JsonWriter::number(double value) {
  separate();
  char buf[64];
  // Shortest form that reads back as the same double, whatever the locale.
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) throw std::logic_error("to_chars failed for a double");
  out_.append(buf, end);
  return *this;
}

JsonWriter& JsonWriter::integer(int64_t value) {
  separate();
  out_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::hash(uint64_t value) {
  separate();
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"0x%016llx\"", static_cast<unsigned long long>(value));
  out_ += buf;
  return *this;
}

}  // namespace cachesage::capi
