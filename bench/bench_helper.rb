# frozen_string_literal: true

# What a benchmark loads first: heapcapture from this checkout's lib/ (built by `rake compile`),
# and the services harness the tests use (test/support/services.rb), so that a benchmark measures
# against the same real PostgreSQL and Ceph RGW, started and stopped the same way. Run one with
# `rake bench:NAME` (options in BENCH_ARGS); `rake -D bench` lists them.
ROOT = File.expand_path("..", __dir__)
$LOAD_PATH.unshift File.join(ROOT, "lib")
require "heapcapture"
require_relative "../test/support/services"

# The middle value (the upper middle of an even count): benchmarks print medians of alternating rounds.
def median(values) = values.sort[values.size / 2]

# A process's peak resident memory so far (VmHWM, bytes); "self" for this one. Read while it runs:
# /proc forgets it once the process is reaped.
def vm_hwm(pid = "self") = File.read("/proc/#{pid}/status")[/VmHWM:\s+(\d+)/, 1].to_i * 1024
