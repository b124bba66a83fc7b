# frozen_string_literal: true

require "test_helper"
require "tmpdir"
require "open3"
require "timeout"

# The capture-time retention analysis runs in a Ruby process of its own (Capture::RetentionProcess):
# its figures are report's for the same dump (started by Dump.spawn_process, never by
# Process.spawn where the build has it; by Process.spawn in a build without it), a thread killed
# while it runs kills it, it does not take the app's RUBYOPT (bundler's setup),
# a file that is not a dump and a process that outlives its time are errors that say so, and no
# file of its is left behind.
class RetentionProcessTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  RP = HeapCapture::Capture::RetentionProcess

  def setup
    @dir = Dir.mktmpdir("hc-retention-process-")
    @dump = File.join(@dir, "garbage.ndjson")
    out, err, status = Open3.capture3({ "RUBYOPT" => nil }, RbConfig.ruby, "--disable-gems",
                                      File.join(ROOT, "test/fixtures/retention/garbage.rb"), @dump)
    assert status.success?, "the fixture failed: #{out}#{err}"
  end

  def teardown
    FileUtils.rm_rf(@dir)
  end

  def test_its_summary_is_reports_and_says_what_memory_it_took
    got = with_env("RUBYOPT" => "-rno_such_library_heapcapture_test") do
      without_process_spawn { RP.summarize(@dump, top: 100, share: 0.1, tmpdir: @dir, raw_bytes: File.size(@dump)) }
    end
    want = HeapCapture::Summary.of_file(@dump, top: 100, strings: false, share: 0.1)
    assert_equal "computed", got["retention"]
    assert_equal want, got.except("retention_peak_bytes")
    # its Ruby (~20 MB) and the graph: more than nothing, far less than a GB for a small dump
    assert_operator got["retention_peak_bytes"], :>, 10 * 1024 * 1024
    assert_operator got["retention_peak_bytes"], :<, 1024 * 1024 * 1024
    assert_equal ["garbage.ndjson"], Dir.children(@dir), "its output files are removed"
  end

  def test_a_file_that_is_not_a_dump_is_an_error_that_says_why
    bad = File.join(@dir, "not-a-dump.txt")
    File.write(bad, "hello\n")
    error = assert_raises(HeapCapture::DumpError) do
      RP.summarize(bad, top: 10, share: 0.1, tmpdir: @dir, raw_bytes: 6)
    end
    assert_match(/\Aheapcapture: the retention analysis failed: .*not-a-dump\.txt.*\(exit status 1\)\z/m, error.message)
    assert_equal ["garbage.ndjson", "not-a-dump.txt"].sort, Dir.children(@dir).sort
  end

  def test_an_analysis_that_outlives_its_time_is_stopped
    RP.singleton_class.alias_method(:timeout_before_test, :timeout)
    RP.define_singleton_method(:timeout) { |_raw_bytes| 0 }
    started = HeapCapture::Util.monotonic
    error = assert_raises(HeapCapture::DumpError) do
      RP.summarize(@dump, top: 10, share: 0.1, tmpdir: @dir, raw_bytes: File.size(@dump))
    end
    assert_equal "heapcapture: the retention analysis took more than 0 s and was stopped", error.message
    assert_operator HeapCapture::Util.monotonic - started, :<, 10, "killed, not waited for"
    assert_equal ["garbage.ndjson"], Dir.children(@dir)
  ensure
    RP.singleton_class.alias_method(:timeout, :timeout_before_test)
  end

  # Listener#stop and Autocapture#stop kill the capture's thread: the analysis must not run on
  # unwatched, for up to its whole time and memory.
  def test_a_capture_thread_killed_while_it_runs_stops_it
    started = Queue.new
    RP.singleton_class.alias_method(:spawn_before_test, :spawn)
    RP.define_singleton_method(:spawn) do |_args, out, err|
      Process.spawn("sleep", "30", out: out, err: err).tap { |pid| started << pid }
    end
    capture = Thread.new { RP.summarize(@dump, top: 10, share: 0.1, tmpdir: @dir, raw_bytes: File.size(@dump)) }
    pid = Timeout.timeout(10) { started.pop }
    Timeout.timeout(10) { sleep 0.01 until capture.status == "sleep" } # waiting for it
    capture.kill
    assert capture.join(10), "the killed thread ended"
    assert_raises(Errno::ESRCH, "the analysis was killed and reaped") { Process.kill(0, pid) }
    assert_equal ["garbage.ndjson"], Dir.children(@dir)
  ensure
    RP.singleton_class.alias_method(:spawn, :spawn_before_test)
  end

  def test_a_build_without_spawn_process_starts_it_with_process_spawn
    skip "this build has no Dump.spawn_process: every test here runs Process.spawn" unless
      HeapCapture::Dump.respond_to?(:spawn_process)
    spawn_process = HeapCapture::Dump.method(:spawn_process)
    HeapCapture::Dump.singleton_class.remove_method(:spawn_process)
    got = with_env("RUBYOPT" => "-rno_such_library_heapcapture_test") do
      RP.summarize(@dump, top: 100, share: 0.1, tmpdir: @dir, raw_bytes: File.size(@dump))
    end
    assert_equal HeapCapture::Summary.of_file(@dump, top: 100, strings: false, share: 0.1),
                 got.except("retention_peak_bytes")
    assert_equal ["garbage.ndjson"], Dir.children(@dir)
  ensure
    HeapCapture::Dump.define_singleton_method(:spawn_process, spawn_process) if spawn_process
  end

  def test_its_time_grows_with_the_dump
    assert_equal 120, RP.timeout(0)
    assert_equal 180, RP.timeout(1024**3)
  end

  private

  # Runs the block with Process.spawn raising, where the build starts the analysis without it.
  def without_process_spawn(&block)
    return block.call unless HeapCapture::Dump.respond_to?(:spawn_process)

    Process.singleton_class.alias_method(:spawn_before_test, :spawn)
    Process.define_singleton_method(:spawn) { |*| raise "Process.spawn was called: it forks the app as root" }
    block.call
  ensure
    if Process.respond_to?(:spawn_before_test)
      Process.singleton_class.alias_method(:spawn, :spawn_before_test)
      Process.singleton_class.remove_method(:spawn_before_test)
    end
  end

  def with_env(vars)
    saved = vars.to_h { |k, _| [k, ENV.fetch(k, nil)] }
    vars.each { |k, v| ENV[k] = v }
    yield
  ensure
    saved.each { |k, v| ENV[k] = v }
  end
end
