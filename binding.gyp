{
  "targets": [
    {
      "target_name": "mpbus",
      "sources": ["<!@(ls -1 native/*.cc)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags": ["<!@(pkg-config --cflags libdpdk)", "-Wall", "-Wno-unused-parameter"],
      "cflags_cc": ["<!@(pkg-config --cflags libdpdk)", "-std=c++17", "-fexceptions", "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["<!@(pkg-config --libs libdpdk)"]
    }
  ]
}
