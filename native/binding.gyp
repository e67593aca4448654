{
  "targets": [
    {
      "target_name": "zeroflow_shm",
      "sources": ["src/addon.cc", "src/shm_comm.cc", "src/reduce_kernels.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags": ["-O3", "-fvisibility=hidden"],
      "cflags_cc": ["-O3", "-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wno-unused-function", "-Wno-maybe-uninitialized"],
      "libraries": ["-lrt", "-lpthread"],
      "conditions": [["OS!='linux'", {"sources!": ["src/addon.cc", "src/shm_comm.cc"]}]]
    }
  ]
}
