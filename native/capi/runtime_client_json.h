// The JSON the runtime client speaks with the sidecar (docs/c-abi.md): a
// writer for request bodies and a strict parser for replies. Internal to
// libcachesage.
//
// The parser trusts nothing: every reply is bounded (depth, size), numbers
// are parsed with std::from_chars (exact, and independent of the C locale an
// engine may have set), and any deviation from RFC 8259 is a ProtocolError,
// never a crash or a read past the buffer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cachesage::capi {

// The reply could not be understood: bad HTTP, bad JSON, a missing field.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class JsonValue {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> items;
  // Members in document order; duplicate keys are refused by the parser.
  std::vector<std::pair<std::string, JsonValue>> members;

  bool isNull() const { return kind == Kind::Null; }
  // The member named `key`, or nullptr (also when this is not an object).
  const JsonValue* find(std::string_view key) const;
};

// Parses a whole document; trailing non-space bytes are an error.
JsonValue parseJson(std::string_view text);

// Typed access to a reply's fields; `where` names the reply in errors
// ("admit reply") so a ProtocolError says which field was wrong.
const JsonValue& member(const JsonValue& object, std::string_view key, const std::string& where);
bool boolMember(const JsonValue& object, std::string_view key, const std::string& where);
double numberMember(const JsonValue& object, std::string_view key, const std::string& where);
// An integer-valued number in [min, max].
int64_t intMember(const JsonValue& object, std::string_view key, int64_t min, int64_t max,
                  const std::string& where);
int64_t intValue(const JsonValue& value, int64_t min, int64_t max, const std::string& where);
const std::string& stringMember(const JsonValue& object, std::string_view key,
                                const std::string& where);
// An array of integers in [min, max].
std::vector<int32_t> intArrayMember(const JsonValue& object, std::string_view key, int64_t min,
                                    int64_t max, const std::string& where);

// Request bodies, written field by field.
class JsonWriter {
 public:
  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view value);
  JsonWriter& number(double value);  // finite only; shortest round-trip form
  JsonWriter& integer(int64_t value);
  // A 64-bit hash as the sidecar reads it: "0x" and hex digits.
  JsonWriter& hash(uint64_t value);
  JsonWriter& beginArray();
  JsonWriter& endArray();
  const std::string& text() const { return out_; }

 private:
  void separate();
  std::string out_;
  // Per open container: whether it already holds an element.
  std::vector<bool> nonEmpty_;
  bool afterKey_ = false;
};

}  // namespace cachesage::capi
