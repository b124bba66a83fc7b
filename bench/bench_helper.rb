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
