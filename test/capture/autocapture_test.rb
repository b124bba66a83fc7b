# frozen_string_literal: true

require "test_helper"
require "time"
require_relative "../support/listener_helpers"
require_relative "../support/file_capture"
require "json"
require "open3"

# Captures without a human: every N seconds, and the RSS watch (strikes, backoff, growth: in a small
# probe process whose RSS only the test moves); each a normal capture replied on heapcapture_reply;
# stopped with the listener; not in a forked child; a watch that cannot read RSS says so; bad
# settings keep exclusive from arming, saying why.
class AutocaptureTest < HCTest::TestCase
  include HCTest::ListenerHelpers
  include HCTest::FileCapture

  MB = 1024 * 1024

  def teardown
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

  # In a probe process of its own (test/support/rss_watch_probe.rb): a small app whose RSS only
  # the test moves.
  def test_rss_above_captures_once_after_the_strikes_not_again_within_the_backoff_and_again_after_it
    with_watch_probe do |probe|
      rss, payload, first_at = armed_then_grown(probe, quiet: 0.8, grow: 160) do |settled|
        { rss_above: settled + 40 * MB, rss_interval: 0.1, rss_strikes: 3, rss_backoff: 2 }
      end
      assert_match(/\Arss \d+ MB > \d+ MB, 3 strikes\z/, payload)
      assert_nil probe.next_capture(1.6), "none within the 2 s backoff"
      _payload, second_at = probe.next_capture(4) || flunk("no capture after the backoff; #{probe.state}")
      assert_in_delta 2.3, second_at - first_at, 0.8, "again once the backoff is over (2 s + 3 readings)"
      status = probe.ask("status")["automatic"]
      assert_equal rss + 40 * MB, status["rss_above"]
      assert_operator status["rss_readings"].last, :>, rss + 40 * MB
    end
  end

  def test_a_process_that_stays_below_never_captures_and_growth_captures_when_it_grows
    with_watch_probe do |probe|
      _rss, payload, = armed_then_grown(probe, quiet: 1.0, grow: 120) do |settled|
        { rss_above: settled + 400 * MB, rss_interval: 0.1, rss_growth: "30MB" }
      end
      assert_match(/\Arss grew \d+ MB since the last capture \(\d+ MB to \d+ MB\)\z/, payload)
      assert_nil probe.next_capture(1.0), "no more growth: no more captures"
    end
  end

  # A watch that cannot read /proc says so once, shows how long ago its last reading was, and
  # reads again once it can.
  def test_a_watch_that_cannot_read_rss_says_so_once_and_goes_on_trying
    record_captures
    arm("web.1", rss_above: 1, rss_interval: 0.1, rss_strikes: 1000)
    wait_for("a reading") { HeapCapture.status[:automatic][:rss_readings].any? }
    readable = HeapCapture::Dump.method(:rss)
    HeapCapture::Dump.define_singleton_method(:rss) { nil }
    begin
      sleep 0.6
      status = HeapCapture.status[:automatic]
      assert_operator status[:rss_last_reading_ago], :>=, 0.4, "no reading while /proc cannot be read: #{status}"
      warnings = log_text.scan(%r{the RSS watch cannot read this process's RSS \(VmRSS in /proc/self/status\): no capture on RSS})
      assert_equal 1, warnings.size, log_text
    ensure
      HeapCapture::Dump.define_singleton_method(:rss, readable)
    end
    wait_for("a reading again") { HeapCapture.status[:automatic][:rss_last_reading_ago] < 0.3 }
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

  # The probe's answers and the captures it reports, read on a thread of their own.
  class WatchProbe
    def initialize(stdin, stdout, stderr)
      @stdin = stdin
      @replies = Queue.new
      @captures = Queue.new
      @stderr = Thread.new { stderr.read }
      @stderr.report_on_exception = false # an IOError once the test closes it: errors says nil then
      @reader = Thread.new { read(stdout) }
      ready = ask_raw(nil, 60)
      raise "the RSS watch probe did not start: #{ready}; #{errors}" unless ready.key?("ready")
    end

    def ask(command)
      answer = ask_raw(command, 30)
      answer.fetch("reply") { raise "the RSS watch probe gave no answer to #{command.inspect}: #{answer}; #{errors}" }
    end

    # [payload, monotonic time] of the next capture within seconds, or nil.
    def next_capture(seconds) = HCTest::ListenerHelpers.pop_within(@captures, seconds)

    # What the watch saw, this process's RSS now, and the probe's log: for failure messages.
    def state
      status = ask("status")
      "RSS now #{status['rss']}; the RSS watch: #{status['automatic'].inspect}; log:\n#{status['log']}"
    end

    def quit
      @stdin.puts "quit"
      @stdin.close
    end

    # What the probe wrote on stderr (once it has ended, or after 5 s).
    def errors = "stderr: #{@stderr.join(5)&.value.inspect}"

    def join = @reader.join(5)

    private

    # Every line a reply or a capture; the end of the output (or a line that is not JSON) ends the
    # replies, so that an ask fails at once rather than at its timeout.
    def read(stdout)
      stdout.each_line do |line|
        message = JSON.parse(line)
        message.key?("capture") ? @captures << [message["capture"], message["at"]] : @replies << message
      end
    rescue JSON::ParserError, IOError => e
      @replies << { "ended" => "#{e.class}: #{e.message}" }
    ensure
      @replies << { "ended" => true }
    end

    def ask_raw(command, timeout)
      if command
        @stdin.puts command
        @stdin.flush
      end
      HCTest::ListenerHelpers.pop_within(@replies, timeout) or
        raise "no answer from the RSS watch probe to #{command.inspect} within #{timeout} s"
    end
  end

  # Arms the probe with the settings the block gives for its settled RSS, sees no capture for quiet
  # seconds (below the line, not grown), grows it by grow MB: [rss, payload, time] of the capture the
  # watch then starts, within 10 s.
  def armed_then_grown(probe, quiet:, grow:)
    rss = probe.ask("rss")
    assert probe.ask("arm #{JSON.generate(yield(rss))}"), probe.state
    assert_nil probe.next_capture(quiet), "no capture before the growth"
    probe.ask("grow #{grow}")
    payload, at = probe.next_capture(10) || flunk("no automatic capture within 10 s; #{probe.state}")
    [rss, payload, at]
  end

  # The probe, ended however the block ends: quit when it returns, its stdin closed (it then quits)
  # and, after 10 s, killed when it raises.
  def with_watch_probe
    cmd = [RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", File.join(ROOT, "test/support/rss_watch_probe.rb")]
    stdin, stdout, stderr, wait = Open3.popen3(*cmd)
    probe = nil
    begin
      probe = WatchProbe.new(stdin, stdout, stderr)
      yield probe
      probe.quit
      status = wait.join(10)&.value
      assert status&.success?, "the RSS watch probe did not end well: #{status.inspect}; #{probe.errors}"
    ensure
      stdin.close unless stdin.closed?
      unless wait.join(10)
        begin
          Process.kill(:KILL, wait.pid)
        rescue Errno::ESRCH
          nil # it ended meanwhile
        end
        wait.join(5)
      end
      probe&.join
      [stdout, stderr].each { |io| io.close unless io.closed? }
    end
  end

  # The next capture the hook saw within seconds, or nil.
  def next_delivery_or_nil(seconds) = HCTest::ListenerHelpers.pop_within(@delivered, seconds)
end
