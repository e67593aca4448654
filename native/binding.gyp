{
  "variables": {
    "zf_kernels%": "<!(node -p \"process.env.ZEROFLOW_BUILD_KERNELS === '0' ? 'off' : 'on'\")",
    "zf_blas%": "<!(node -p \"process.env.ZEROFLOW_BLAS || 'none'\")",
    "zf_blas_include%": "<!(node -p \"process.env.ZEROFLOW_BLAS_INCLUDE || '/usr/include'\")"
  },
  "targets": [
    {
      "target_name": "zeroflow_shm",
      "sources": [
        "src/addon.cc",
        "src/shm_comm.cc",
        "src/reduce_kernels.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti",
        "-std=gnu++17"
      ],
      "cflags": [
        "-O3",
        "-fvisibility=hidden"
      ],
      "cflags_cc": [
        "-O3",
        "-std=c++17",
        "-fexceptions",
        "-fvisibility=hidden",
        "-Wall",
        "-Wno-unused-function",
        "-Wno-maybe-uninitialized"
      ],
      "libraries": [
        "-lrt",
        "-lpthread"
      ],
      "conditions": [
        [
          "OS!='linux'",
          {
            "sources!": [
              "src/addon.cc",
              "src/shm_comm.cc"
            ]
          }
        ]
      ]
    },
    {
      "target_name": "zeroflow_kernels",
      "sources": [
        "src/kernels/kernels_addon.cc",
        "src/kernels/gemm.cc",
        "src/kernels/gemm_own.cc",
        "src/kernels/pointwise.cc",
        "src/kernels/math.cc",
        "src/kernels/fused.cc",
        "src/kernels/attention.cc",
        "src/kernels/gemm_amx.cc",
        "src/kernels/transpose.cc",
        "src/kernels/thread_pool.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti",
        "-std=gnu++17"
      ],
      "cflags": [
        "-O3",
        "-fvisibility=hidden"
      ],
      "cflags_cc": [
        "-O3",
        "-std=c++17",
        "-fexceptions",
        "-fvisibility=hidden",
        "-Wall",
        "-Wno-unused-function",
        "-Wno-maybe-uninitialized",
        "-fno-math-errno",
        "-fno-trapping-math",
        "-ffp-contract=off"
      ],
      "libraries": [
        "-lpthread"
      ],
      "conditions": [
        [
          "zf_blas=='openblas'",
          {
            "defines": [
              "ZF_HAVE_OPENBLAS"
            ],
            "include_dirs": [
              "<(zf_blas_include)"
            ],
            "libraries": [
              "-lopenblas"
            ]
          }
        ],
        [
          "zf_kernels!='on'",
          {
            "type": "none",
            "sources!": [
              "src/kernels/kernels_addon.cc",
              "src/kernels/gemm.cc",
              "src/kernels/gemm_own.cc",
              "src/kernels/pointwise.cc",
              "src/kernels/math.cc",
              "src/kernels/fused.cc",
              "src/kernels/gemm_amx.cc",
              "src/kernels/transpose.cc",
              "src/kernels/thread_pool.cc"
            ]
          }
        ]
      ]
    }
  ]
}
