// Decoding of JavaScript arguments for the addon's functions. Each helper throws a TypeError that
// names the function and the argument, so a wrong call fails before any system call is made.
#pragma once

#include <napi.h>

#include <array>
#include <cstdint>
#include <string>

namespace ovnode {

std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* fn);
Napi::Function FunctionArg(const Napi::CallbackInfo& info, size_t index, const char* fn);
Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* fn);

// A required, non-empty string property of a request object.
std::string StringProp(const Napi::Object& obj, const char* key, const char* fn);
// An optional integer property in [min, max]; fallback when absent or undefined.
uint32_t OptionalUintProp(const Napi::Object& obj, const char* key, const char* fn,
                          uint32_t fallback, uint32_t min, uint32_t max);

// An interface name as the kernel accepts it (non-empty, shorter than IFNAMSIZ).
std::string InterfaceNameArg(const Napi::CallbackInfo& info, size_t index, const char* fn);
void CheckInterfaceName(Napi::Env env, const std::string& name, const char* fn);
// Stricter, for a name that picks a link to change: also no '/' and no whitespace, which the
// kernel never lets into a device name (dev_valid_name), so such a name is a caller's bug rather
// than a link that happens to be missing.
void CheckDeviceName(Napi::Env env, const std::string& name, const char* fn);

// Exactly six colon-separated pairs of hex digits ("0a:1B:..."); hand-rolled because sscanf's
// "%2x" also takes signs and spaces. False, with mac unspecified, for anything else.
bool ParseMac(const std::string& text, std::array<uint8_t, 6>& mac);

}  // namespace ovnode
