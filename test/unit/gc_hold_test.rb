# frozen_string_literal: true

require "test_helper"
require "stringio"
require_relative "../support/file_capture"

# Around a fork capture's dump child the app's major GCs are held off where Ruby can turn them off
# alone (3.4 and later: Capture::GcHold), until the child exits, the app has grown by BUDGET_SHARE
# of its RSS, or the capture ends; an app that had them off keeps them off; a process forked
# meanwhile gets them back. On older Rubies nothing is held (the whole GC held off costs more than
# it saves: bench/capture_memory) and the GC is left as it was. What the hold saves in copied pages
# is bench/capture_memory's to show, not a test's.
class GcHoldTest < HCTest::TestCase
  include HCTest::FileCapture

  HOLD = HeapCapture::Capture::GcHold

  # A dump child as the hold sees it.
  FakeChild = Struct.new(:exited) do
    def exited? = exited
  end

  def teardown
    HOLD.allow_major_gc(true) if HOLD::AVAILABLE
    GC.enable
  end

  def test_the_hold_is_there_where_ruby_can_turn_major_gcs_off_alone
    assert_equal GC.respond_to?(:config) && GC.config.key?(:rgengc_allow_full_mark), HOLD::AVAILABLE
    assert_equal RUBY_VERSION >= "3.4", HOLD::AVAILABLE, "Ruby #{RUBY_VERSION}"
  end

  # The log line's "held off N ms", against this test's own clock: at least the 0.3 s the child
  # lived, at most the time from before the hold began until its release was seen.
  def test_major_gcs_stay_off_until_the_child_exits
    child = FakeChild.new(false)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    hold = new_hold
    hold.follow(child)
    sleep 0.3
    assert_equal HOLD::AVAILABLE, major_gc_off?, "held while the child lives, where Ruby can"
    assert_nil hold.description
    child.exited = true
    unless HOLD::AVAILABLE
      hold.release
      assert_nil hold.description, "nothing was held"
      return
    end

    HCTest::Services.wait_until("the hold's release after the child's exit", timeout: 5) { hold.description }
    seen_ms = (Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) * 1000
    line = /\Athe app's major GC held off (\d+) ms while the dump child lived \(until the dump child exited\)\z/
    held_ms = hold.description[line, 1]
    assert held_ms, hold.description
    assert_operator Integer(held_ms), :>=, 300
    assert_operator Integer(held_ms), :<=, seen_ms.ceil
    refute major_gc_off?
  end

  def test_an_app_that_grows_past_the_budget_gets_its_major_gcs_back
    hold = new_hold
    hold.follow(FakeChild.new(false))
    budget = HeapCapture::Dump.rss * HOLD::BUDGET_SHARE
    ballast = "x" * (budget * 2).round # written: resident
    return assert_nothing_held(hold) unless HOLD::AVAILABLE

    HCTest::Services.wait_until("the hold's release past its budget", timeout: 5) { hold.description }
    assert_match(/until the app had grown by 10% of its RSS/, hold.description)
    refute major_gc_off?
    assert_operator ballast.bytesize, :>, 0
  end

  def test_release_at_the_end_of_the_capture_is_idempotent
    hold = new_hold
    hold.release
    hold.release("the dump child exited")
    refute major_gc_off?
    if HOLD::AVAILABLE
      assert_match(/until the capture ended/, hold.description)
    else
      assert_nil hold.description
    end
  end

  def test_an_app_that_had_major_gcs_off_keeps_them_off
    return assert_nothing_held(new_hold) unless HOLD::AVAILABLE

    HOLD.allow_major_gc(false)
    hold = new_hold
    hold.release
    assert major_gc_off?, "still off, as the app had it"
    assert_nil hold.description
  end

  def test_a_process_forked_during_the_hold_has_major_gcs_on
    hold = new_hold
    pid = fork { exit!(major_gc_off? ? 1 : 0) }
    _, status = Process.wait2(pid)
    assert status.success?, "the forked process had its major GCs off"
    assert_equal HOLD::AVAILABLE, major_gc_off?, "still held here, where Ruby can"
    hold.release
  end

  def test_child_exited_is_false_while_it_dumps_and_true_after
    Dir.mktmpdir("hc-gc-hold-") do |dir|
      child = HeapCapture::Dump.fork_start(dir, true, HeapCapture::Capture.vm_fork)
      begin
        assert child.wait["raw_bytes"].positive?
        assert child.exited?
      ensure
        child.close
      end
      assert child.exited?, "closed"
    end
  end

  def test_a_fork_capture_holds_major_gcs_and_gives_them_back
    log = StringIO.new
    use_file_destination(logger: Logger.new(log))
    result = HeapCapture.capture(mode: :fork)
    assert_equal "ok", result["status"], result["error"]
    refute major_gc_off?, "on again after the capture"
    refute_match(/GC held off/, log.string) unless HOLD::AVAILABLE
    assert_match(/major GC held off \d+ ms while the dump child lived \(until the dump child exited\)/, log.string) \
      if HOLD::AVAILABLE
    assert_equal "ok", HeapCapture.capture(mode: :inline)["status"]
    refute major_gc_off?
  ensure
    remove_file_destination
  end

  private

  def major_gc_off? = HOLD::AVAILABLE && !GC.config[:rgengc_allow_full_mark]

  def new_hold = HOLD.new(HeapCapture::Dump.rss)

  # Where Ruby cannot hold major GCs alone: the GC as it was, nothing to release.
  def assert_nothing_held(hold)
    refute GC.enable, "the GC was left on"
    hold.release
    assert_nil hold.description
  end
end
