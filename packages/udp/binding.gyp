{
  "targets": [
    {
      "target_name": "heimdall_udp",
      "sources": ["native/udp.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources": [] }],
        ["'<!(echo $HEIMDALL_UDP_ASAN)'=='1'", {
          "cflags": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"],
          "ldflags": ["-fsanitize=address"]
        }]
      ]
    }
  ]
}
