# frozen_string_literal: true

# One way to run each benchmark: `rake bench:NAME`, its options in BENCH_ARGS
# (`BENCH_ARGS="--rounds 7" rake bench:capture`). Each starts the services it needs and prints
# heapcapture's figures beside the alternative's, from the same run; nothing is asserted.
require "shellwords"

BENCHMARKS = {
  capture: "app pause and signal-to-stored, fork and inline, against in-process dump_all + aws-sdk put_object",
  capture_memory: "extra memory and pause, quiet and busy: fork, inline, rbtrace's way, in-process dump_all",
  upload: "S3 upload speed and memory against aws-sdk-s3 (put_object, upload_file) and curl -T",
  latency: "NOTIFY-to-capture latency (--old: beside the_lone_dyno's poll, about 2 minutes)",
  sigv4: "SigV4 signing cost against the aws-sigv4 gem",
  tracing: "what arming costs: unarmed vs sampled vs full tracing, alone and in puma under wrk; sites in a capture",
  summary: "what the summary made during a capture costs the dump, fork and inline, beside reading it afterwards",
  report: "heapcapture report (with and without retention) and diff against harb (--harb PATH), heapy, " \
          "heap-profiler and sheap on the same dumps (--sizes: the report at three dump sizes)",
  json_scan: "heapcapture's dump line scanner against simdjson, jansson, json-c and yajl on the same dump",
  dump_child: "the dump child alone, alternating between builds (BENCH_ARGS: LIBDIR...)"
}.freeze

namespace :bench do
  BENCHMARKS.each do |name, description|
    desc "Benchmark: #{description}"
    task name => :compile do
      ruby File.join("bench", name.to_s), *Shellwords.split(ENV.fetch("BENCH_ARGS", ""))
    end
  end
end
