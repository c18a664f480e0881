// Argument decoding shared by the addon's functions; see args.h.
#include "args.h"

#include <net/if.h>

#include <cmath>

#include "errors.h"

namespace ovnode {
namespace {

std::string ArgName(size_t index) { return "argument " + std::to_string(index + 1); }

[[noreturn]] void ThrowInvalidName(Napi::Env env, const std::string& name, const char* fn) {
  ThrowTypeError(env, std::string(fn) + ": invalid interface name \"" + name + "\"");
}

}  // namespace

std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  if (!info[index].IsString()) {
    ThrowTypeError(info.Env(), std::string(fn) + ": " + ArgName(index) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

Napi::Function FunctionArg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  if (!info[index].IsFunction()) {
    ThrowTypeError(info.Env(), std::string(fn) + ": " + ArgName(index) + " must be a function");
  }
  return info[index].As<Napi::Function>();
}

Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  if (!info[index].IsObject() || info[index].IsArray()) {
    ThrowTypeError(info.Env(), std::string(fn) + ": " + ArgName(index) + " must be an object");
  }
  return info[index].As<Napi::Object>();
}

std::string StringProp(const Napi::Object& obj, const char* key, const char* fn) {
  Napi::Value value = obj.Get(key);
  if (!value.IsString() || value.As<Napi::String>().Utf8Value().empty()) {
    ThrowTypeError(obj.Env(), std::string(fn) + ": " + key + " must be a non-empty string");
  }
  return value.As<Napi::String>().Utf8Value();
}

uint32_t OptionalUintProp(const Napi::Object& obj, const char* key, const char* fn,
                          uint32_t fallback, uint32_t min, uint32_t max) {
  Napi::Value value = obj.Get(key);
  if (value.IsUndefined()) return fallback;
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : NAN;
  if (!(number >= min && number <= max) || std::floor(number) != number) {
    ThrowTypeError(obj.Env(), std::string(fn) + ": " + key + " must be an integer from " +
                                  std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<uint32_t>(number);
}

void CheckInterfaceName(Napi::Env env, const std::string& name, const char* fn) {
  // IFNAMSIZ counts the terminating NUL; a NUL inside would silently truncate the name.
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    ThrowInvalidName(env, name, fn);
  }
}

void CheckDeviceName(Napi::Env env, const std::string& name, const char* fn) {
  CheckInterfaceName(env, name, fn);
  // ASCII whitespace, as the kernel's isspace() sees it.
  if (name.find_first_of("/ \t\n\v\f\r") != std::string::npos) ThrowInvalidName(env, name, fn);
}

std::string InterfaceNameArg(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  std::string name = StringArg(info, index, fn);
  CheckInterfaceName(info.Env(), name, fn);
  return name;
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool ParseMac(const std::string& text, std::array<uint8_t, 6>& mac) {
  if (text.size() != 3 * mac.size() - 1) return false;
  for (size_t i = 0; i < mac.size(); i++) {
    const int hi = HexDigit(text[3 * i]);
    const int lo = HexDigit(text[3 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    if (i + 1 < mac.size() && text[3 * i + 2] != ':') return false;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace ovnode
