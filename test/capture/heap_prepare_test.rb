# frozen_string_literal: true

require "test_helper"
require "tmpdir"
require_relative "../support/file_capture"

# Before a fork capture the app computes what dump_all would store in its strings (their
# coderange), so the dump child copies none of their pages for it (rb_dump_prepare.c; the memory
# it saves is bench/capture_memory's to show). Here: the strings whose coderange was unknown are
# prepared, once; a fork capture prepares them; the values are what Ruby says of them after; other
# threads keep running during the walk.
class HeapPrepareTest < HCTest::TestCase
  include HCTest::FileCapture

  def setup = use_file_destination
  def teardown = remove_file_destination

  def test_strings_of_unknown_coderange_are_prepared_once
    HeapCapture::Dump.prepare_heap
    fresh = fresh_strings(20_000, 40)
    broken = fresh_strings(1000, 40, "\xff\xfe").map { |str| str.force_encoding("UTF-8") }
    assert_operator HeapCapture::Dump.prepare_heap, :>=, 21_000
    assert_operator HeapCapture::Dump.prepare_heap, :<, 100, "known now: not computed again"
    assert(fresh.all?(&:ascii_only?))
    assert(broken.none?(&:valid_encoding?), "a broken string is still said to be broken")
  end

  def test_a_fork_capture_prepares_the_heap
    fresh = fresh_strings(20_000, 40)
    assert_equal "ok", HeapCapture.capture(mode: :fork)["status"]
    assert_operator HeapCapture::Dump.prepare_heap, :<, 1000, "the capture had computed them"
    assert_equal 20_000, fresh.size
  end

  # 1.5 M fresh strings (~90 MB to scan): the walk takes far longer than the 10 ms it may hold the
  # GVL at a time (2 M took ~100 ms here), so it must hand the GVL over at least once.
  def test_other_threads_run_during_the_walk
    fresh = fresh_strings(1_500_000, 60)
    ticks = 0
    ticker = Thread.new { loop { ticks += 1 } }
    Thread.pass until ticks.positive?
    before = ticks
    assert_operator HeapCapture::Dump.prepare_heap, :>=, fresh.size
    assert_operator ticks, :>, before, "the CPU-bound thread ran while the heap was walked"
  ensure
    ticker&.kill
    fresh&.clear
  end

  private

  # count strings of bytesize bytes read from a file, as an app reads a request or a row: a string
  # IO#read makes has no coderange until something asks (Ruby 3.3's format already knows it).
  def fresh_strings(count, bytesize, prefix = "")
    Dir.mktmpdir("hc-prepare-") do |dir|
      path = File.join(dir, "bytes")
      File.binwrite(path, Array.new(count) { |i| format("%-#{bytesize}s", "#{prefix}#{i}".b) }.join)
      File.open(path, "rb") { |f| Array.new(count) { f.read(bytesize) } }
    end
  end
end
