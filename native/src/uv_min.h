// The few libuv 1.x functions processes.cc uses, declared here because the addon builds against the
// node-api-headers package (see CMakeLists.txt), which ships no uv.h. Node exports libuv's symbols
// to addons, and libuv keeps its ABI stable within major version 1 (RegisterProcesses checks the
// running major version). The handle is used only through pointers: its memory is sized with
// uv_handle_size, so no struct layout is assumed here.
#pragma once

#include <cstddef>

extern "C" {

// napi_get_uv_event_loop hands out a `struct uv_loop_s*` (node_api.h).
typedef struct uv_loop_s uv_loop_t;
typedef struct uv_handle_s uv_handle_t;
typedef struct uv_poll_s uv_poll_t;

// uv_handle_type: UV_UNKNOWN_HANDLE (0), then UV_HANDLE_TYPE_MAP in order: ASYNC, CHECK, FS_EVENT,
// FS_POLL, HANDLE, IDLE, NAMED_PIPE, POLL, ... Only the value of UV_POLL is needed.
typedef enum { UV_POLL = 8 } uv_handle_type;
// uv_poll_event
enum { UV_READABLE = 1 };

typedef void (*uv_poll_cb)(uv_poll_t* handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t* handle);

unsigned int uv_version(void);
size_t uv_handle_size(uv_handle_type type);
void uv_handle_set_data(uv_handle_t* handle, void* data);
void* uv_handle_get_data(const uv_handle_t* handle);
void uv_unref(uv_handle_t* handle);
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
// Errors are negative errno values on Unix.
int uv_poll_init(uv_loop_t* loop, uv_poll_t* handle, int fd);
int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t* handle);

}  // extern "C"
