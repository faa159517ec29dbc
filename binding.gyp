{
  "targets": [
    {
      "target_name": "tsfuse",
      "sources": ["native/tsfuse.cc", "native/pt.cc", "native/pt_io.cc", "native/uring.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall"]
    }
  ]
}
