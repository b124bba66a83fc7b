# frozen_string_literal: true

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
# Tests signal one armed process many times in a row: min_interval off (60 s by default) here and in
# every process they start; test/capture/min_interval_test.rb sets it.
ENV["HEAPCAPTURE_MIN_INTERVAL"] = "0"
require "minitest/autorun"
require "heapcapture"
require_relative "support/services"

module HCTest
  # The checkout: tests live one folder below test/ (test/<tier or subsystem>/x_test.rb).
  ROOT = File.expand_path("..", __dir__)

  class << self
    attr_accessor :failed

    # heapcapture's sampled tracer stopped, and ObjectSpace's tracer off, whatever earlier tests in
    # this process started (its starts nest:
    # an object's allocation file is known only while it is on), what it recorded cleared (off, it
    # hears no frees: a new object in a recorded slot would show the old site), and heapcapture's
    # record of its armed default with it: the next exclusive starts tracing as a fresh process would.
    def stop_allocation_tracing
      HeapCapture::Tracing.stop_sampled
      10.times do
        ObjectSpace.trace_object_allocations_clear # first: a stale record would look like tracing on
        break unless ObjectSpace.allocation_sourcefile(Object.new)

        ObjectSpace.trace_object_allocations_stop
      end
      ObjectSpace.trace_object_allocations_clear
      HeapCapture::Tracing.instance_variable_set(:@default, :off)
    end
  end

  # Base class: tests that need PostgreSQL or S3 call HCTest::Services.start! (or .postgres /
  # .s3); they start once per run. Logs are kept when any test failed.
  class TestCase < Minitest::Test
    # Several tests dump this very process and read the whole dump back. Collect first, so that
    # dump holds what is live and not the garbage of earlier tests: with some orders that garbage
    # was 16M objects, a 6 GB dump, and 10 minutes added to the run.
    def before_setup
      GC.start
      super
    end

    def after_teardown
      super
      HCTest.failed = true unless passed? || skipped?
      HeapCapture.reset_config!
      HeapCapture::MemoryGuard.reset! # what a fork capture taught it is not the next test's
    end
  end
end

Minitest.after_run { HCTest::Services.stop!(keep_logs: HCTest.failed) }
