{
  "targets": [
    {
      "target_name": "mpbus",
      "sources": ["<!@(ls -1 native/*.cc)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: a thread-safe function whose call is still queued
      # when Node tears its environment down (a program that returned right after an event, or an
      # exit hook's port stop) cannot run JavaScript; without it node-addon-api throws a C++
      # exception there, and the process aborts (test/close-exits.test.ts).
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags": ["<!@(pkg-config --cflags libdpdk)", "-Wall", "-Wno-unused-parameter"],
      "cflags_cc": ["<!@(pkg-config --cflags libdpdk)", "-std=c++17", "-fexceptions", "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["<!@(pkg-config --libs libdpdk)"]
    }
  ]
}
