# frozen_string_literal: true

require "test_helper"
require "time"
require_relative "support/listener_helpers"
require_relative "support/file_capture"
require "json"

# Captures without a human: every N seconds, and the RSS watch (strikes, backoff, growth); each a
# normal capture replied on heapcapture_reply; stopped with the listener; not in a forked child;
# bad settings keep exclusive from arming, saying why.
class AutocaptureTest < HCTest::TestCase
  include HCTest::ListenerHelpers
  include HCTest::FileCapture

  MB = 1024 * 1024

  def teardown
    @ballast = nil
    super
    remove_file_destination if @dest
    HeapCapture.configure do |c|
      c.every = nil
      c.rss_above = nil
      c.rss_growth = nil
      c.rss_interval = 30
      c.rss_strikes = 3
      c.rss_backoff = 3600
      c.memory_limit = nil
    end
  end

  # The period is kept by the ticks (logged "automatic capture: every 2 s"), whatever each capture
  # takes: a tick while one runs is coalesced into it (a capture of this test process, with its
  # retention analysis after the dump, may take longer than 2 s on a loaded machine).
  def test_every_2_s_ticks_spaced_by_the_period_and_three_captures_each_stored_and_replied
    use_file_destination(logger: HeapCapture.config.logger)
    replies = watcher("heapcapture_reply")
    started = monotonic
    armed_at = Time.now
    arm("web.1", every: 2)
    assert_match(/captures every 2(\.0)? s/, log_text)
    results = []
    deadline = started + 30
    while results.size < 3 && monotonic < deadline
      notifications(replies, timeout: 0.5).each do |_channel, _pid, text|
        reply = JSON.parse(text)
        results << reply if reply["status"] != "ack"
      end
    end
    assert_equal 3, results.size, "three captures within 30 s: #{log_text}"
    results.each do |r|
      assert_equal "ok", r["status"], r["error"]
      assert_equal "every 2 s", r["payload"]
      assert_nil r["request_id"], "no one asked: no request id"
      assert File.file?(r["location"]), "stored: #{r['location']}"
    end
    ticks = log_text.scan(/\[(\S+) #\d+\]  INFO -- : heapcapture: automatic capture: every 2 s$/).map { |(t)| Time.parse(t) }
    assert_operator ticks.size, :>=, 3, log_text
    gaps = ticks.each_cons(2).map { |a, b| b - a }
    gaps.each { |gap| assert_in_delta 2.0, gap, 0.7, "ticks spaced by the period (+/- 10% jitter): #{gaps}" }
    assert_operator ticks.first - armed_at, :>=, 1.7, "the first one period after arming, not at once"
  end

  def test_rss_above_captures_once_after_the_strikes_not_again_within_the_backoff_and_again_after_it
    record_captures
    rss = settled_rss
    arm("web.1", rss_above: rss + 40 * MB, rss_interval: 0.1, rss_strikes: 3, rss_backoff: 2)
    assert_nil next_delivery_or_nil(0.8), "below the line: no capture"
    # One block above glibc's largest mmap threshold (32 MB): fresh pages, so RSS goes 160 MB up even
    # in a process whose malloc holds freed memory from earlier tests.
    @ballast = "x" * (160 * MB)
    payload, first_at = delivery_while_the_ballast_stays(timeout: 10)
    assert_match(/\Arss \d+ MB > \d+ MB, 3 strikes\z/, payload)
    assert_nil next_delivery_or_nil(1.6), "none within the 2 s backoff"
    _payload, second_at = next_delivery(timeout: 4)
    assert_in_delta 2.3, second_at - first_at, 0.8, "again once the backoff is over (2 s + 3 readings)"
    status = HeapCapture.status[:automatic]
    assert_equal rss + 40 * MB, status[:rss_above]
    assert_operator status[:rss_readings].last, :>, rss + 40 * MB
  end

  def test_a_process_that_stays_below_never_captures_and_growth_captures_when_it_grows
    record_captures
    rss = settled_rss
    arm("web.1", rss_above: rss + 400 * MB, rss_interval: 0.1, rss_growth: "30MB")
    assert_nil next_delivery_or_nil(1.0), "neither above the line nor grown"
    @ballast = "y" * (120 * MB) # fresh pages (see above)
    payload, = delivery_while_the_ballast_stays(timeout: 10)
    assert_match(/\Arss grew \d+ MB since the last capture \(\d+ MB to \d+ MB\)\z/, payload)
    assert_nil next_delivery_or_nil(1.0), "no more growth: no more captures"
  end

  def test_stop_ends_both_and_a_forked_child_runs_neither
    record_captures
    arm("web.1", every: 0.4, rss_above: 1, rss_interval: 0.1, rss_strikes: 1, rss_backoff: 0.3)
    next_delivery(timeout: 5)
    reader, writer = IO.pipe
    child = fork do
      reader.close
      sleep 1.2 # several periods: had anything run here, a capture would have
      names = Thread.list.map(&:name)
      writer.puts JSON.generate("threads" => names, "automatic" => HeapCapture.status[:automatic],
                                "delivered" => @delivered.size)
      writer.close
      exit!(0)
    end
    writer.close
    from_child = JSON.parse(reader.read)
    Process.waitpid(child)
    refute_includes from_child["threads"], "heapcapture-autocapture"
    assert_nil from_child["automatic"]

    assert HeapCapture.stop
    @delivered.clear
    assert_nil next_delivery_or_nil(1.2), "nothing after stop"
    assert_nil HeapCapture.status[:automatic]
    refute(Thread.list.any? { |t| t.name == "heapcapture-autocapture" && t.alive? })
  end

  def test_bad_settings_keep_exclusive_from_arming_and_say_why
    ENV["DYNO"] = "web.1"
    {
      { every: -1 } => /every must be a duration above 0 \(seconds, or "30m", "1h"\), got -1/,
      { rss_above: "150%" } => /rss_above as a share of the memory limit must be above 0% and at most 100%/,
      { rss_above: "lots" } => /rss_above must be a size \(838860800, "800MB"\) or a share of the memory limit/,
      { memory_limit: "100MB", rss_above: "200MB" } => /rss_above 200 MB is above the memory limit 100 MB/,
      { rss_strikes: 0 } => /rss_strikes must be a whole number above 0, got 0/
    }.each do |settings, message|
      before = log_text.size
      assert_equal false, HeapCapture.exclusive(**settings), settings.inspect
      assert_match(/not armed in web\.1 \(pid #{Process.pid}\): .*#{message.source}/, log_text[before..])
      refute HeapCapture.status[:armed]
      HeapCapture.configure { |c| c.memory_limit = nil }
    end
    arm("web.1", memory_limit: "1GB", rss_above: "50%", every: "1h")
    assert_equal 512 * MB, HeapCapture.status[:automatic][:rss_above]
    assert_match(/captures every 3600(\.0)? s, and when RSS stays above 50\.0% of the 1024 MB limit/, log_text)
    assert_equal :strings, HeapCapture::Configuration.new("HEAPCAPTURE_REDACT" => "strings").redact
    config = HeapCapture::Configuration.new("HEAPCAPTURE_EVERY" => "30m", "HEAPCAPTURE_RSS_ABOVE" => "800MB",
                                            "HEAPCAPTURE_RSS_BACKOFF" => "2h", "HEAPCAPTURE_RSS_GROWTH" => "200MB")
    assert_equal [1800.0, 800 * MB, 7200.0, 200 * MB], [config.every, config.rss_above, config.rss_backoff, config.rss_growth]
  end

  private

  # This process's RSS once it holds still (two readings 0.3 s apart within 4 MB, at most 6 s): on
  # Ruby 3.3 and 3.4 it goes on falling for a while after the GC before each test, as freed pages
  # go back to the system, which hid a growth the tests then made (no capture in both RSS tests).
  def settled_rss
    deadline = monotonic + 6
    rss = HeapCapture::Dump.rss
    loop do
      sleep 0.3
      now = HeapCapture::Dump.rss
      return now if (now - rss).abs < 4 * MB || monotonic > deadline

      rss = now
    end
  end

  # The next delivery, writing to every page of the ballast meanwhile so that it stays resident
  # (this VM runs the kernel's DAMON, which may page out memory left cold; once, on Ruby 3.3, both
  # RSS tests saw no capture within 5 s). Flunks with the watch's RSS readings if none comes.
  def delivery_while_the_ballast_stays(timeout:)
    deadline = monotonic + timeout
    loop do
      return @delivered.pop(true)
    rescue ThreadError
      if monotonic > deadline
        flunk "no automatic capture within #{timeout} s; the RSS watch: #{HeapCapture.status[:automatic].inspect}; " \
              "log:\n#{log_text}"
      end
      (0...@ballast.bytesize).step(4096) { |i| @ballast.setbyte(i, 120) }
      sleep 0.02
    end
  end

  # The next capture the hook saw within seconds, or nil.
  def next_delivery_or_nil(seconds)
    deadline = monotonic + seconds
    loop do
      return @delivered.pop(true)
    rescue ThreadError
      return nil if monotonic > deadline

      sleep 0.005
    end
  end
end
