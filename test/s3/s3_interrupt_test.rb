# frozen_string_literal: true

require "test_helper"
require "timeout"
require "stringio"
require_relative "../support/s3_helpers"
require_relative "../support/fault_proxy"

# The transfer runs without the GVL, and an interrupt stops it cleanly: the multipart upload is
# aborted at S3, the thread ends promptly, and the client can be used again.
class S3InterruptTest < HCTest::TestCase
  include HCTest::S3Helpers

  SecondInterrupt = Class.new(StandardError)

  def setup
    super
    @proxy = HCTest::FaultProxy.start(HCTest::Services.s3.port)
    # Part 2 stalls for good (the client would wait 60 s before calling it a stall).
    @proxy.add(:stall, method: "PUT", query: /partNumber=2&/, times: nil)
    @s3 = client(endpoint: @proxy.endpoint, low_speed_time: 60, concurrency: 2)
    @path = random_file(3 * PART)
  end

  def teardown
    @proxy&.stop
    super
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def capture_log
    StringIO.new.tap { |log| HeapCapture.configure { |c| c.logger = Logger.new(log) } }
  end

  def wait_for_the_abort
    HCTest::Services.wait_until("the abort to reach the proxy", timeout: 30) { @proxy.count("DELETE", /uploadId=/) >= 1 }
  end

  def assert_left_open_logged(log, why)
    upload_id = @proxy.initiated.fetch(0)
    # The DELETE went out and its answer was never read: S3 may have done it.
    assert_includes log.string, "aborting the multipart upload #{upload_id} failed too (#{why}): S3 may have acted " \
                                "on the abort unseen; if not, the upload stays open"
    assert_includes log.string, "AbortIncompleteMultipartUpload"
  end

  # Thread#kill ends the uploader within `seconds` although S3 never answers the abort (given 5 s).
  def assert_kill_ends_it_within(uploader, seconds)
    killed_at = now
    uploader.kill
    assert uploader.join(25), "the uploader ended after Thread#kill"
    assert_operator now - killed_at, :<, seconds, "Thread#kill waited about 5 s for the abort, not 30 s"
  end

  def wait_for_the_stall
    HCTest::Services.wait_until("part 2 to reach the proxy", timeout: 30) { @proxy.count("PUT", /partNumber=2&/) >= 1 }
  end

  def test_thread_kill_returns_promptly_and_aborts_the_upload
    ticks = 0
    ticker = Thread.new do
      loop do
        ticks += 1
        sleep 0.01
      end
    end
    uploader = Thread.new { @s3.upload(@path, key: "killed") }
    wait_for_the_stall
    before = ticks
    sleep 0.5
    assert_operator ticks - before, :>=, 10, "another thread keeps ticking while the upload runs"
    assert uploader.alive?

    killed_at = now
    uploader.kill
    assert uploader.join(10), "the uploader ended after Thread#kill"
    assert_operator now - killed_at, :<, 5, "Thread#kill returned promptly"
    ticker.kill.join
    assert_equal 1, @proxy.initiated.size
    assert_equal @proxy.initiated, @proxy.aborted, "the multipart upload was aborted at S3"
    assert_empty @proxy.open_uploads

    # The client is free again.
    @proxy.clear_rules
    small = random_file(100)
    assert_equal 100, @s3.upload(small, key: "after-kill")["bytes"]
  end

  # A signal handler is an interrupt that returns: it runs at once, on the main thread, while the
  # upload goes on where it was (not from the start again: one multipart upload, each part once).
  def test_a_signal_handler_runs_during_an_upload_which_goes_on
    assert_same Thread.main, Thread.current, "trap handlers run on the main thread only"
    @proxy.clear_rules
    @proxy.add(:delay, method: "PUT", query: /partNumber=2&/, seconds: 2)
    handled = []
    previous = trap("USR1") { handled << now }
    signaller = Thread.new do
      wait_for_the_stall
      Process.kill("USR1", Process.pid)
    end
    result = @s3.upload(@path, key: "signalled")
    returned_at = now

    assert_equal 3 * PART, result["bytes"]
    assert_equal 1, handled.size, "the handler ran once"
    assert_operator returned_at - handled.first, :>, 0.5, "it ran while part 2's answer was held back, not after"
    assert_equal 1, @proxy.initiated.size, "one multipart upload: it was not started again"
    assert_empty @proxy.aborted
    assert_equal 3, @proxy.count("PUT", /partNumber=/), "each part sent once"
  ensure
    trap("USR1", previous || "DEFAULT")
    signaller&.kill&.join
  end

  def test_timeout_raises_in_the_uploader_and_aborts_the_upload
    started = now
    assert_raises(Timeout::Error) { Timeout.timeout(1) { @s3.upload(@path, key: "timed-out") } }
    assert_operator now - started, :<, 6
    assert_equal @proxy.initiated, @proxy.aborted
    assert_empty @proxy.open_uploads
  end

  # The abort after an interrupt is not awaited for ever: S3 is given 5 s to answer it (before: three
  # attempts of up to 10 s each), a second interrupt ends it at once, and the log says the upload
  # may be left open.
  def test_a_slow_abort_after_thread_kill_is_given_5_seconds
    @proxy.add(:delay, method: "DELETE", query: /uploadId=/, seconds: 50, times: nil)
    log = capture_log
    uploader = Thread.new { @s3.upload(@path, key: "slow-abort") }
    wait_for_the_stall
    assert_kill_ends_it_within(uploader, 12)
    assert_equal 1, @proxy.count("DELETE", /uploadId=/), "the abort was sent once, not retried past the bound"
    assert_left_open_logged(log, "interrupted, and S3 had not answered 5 s later")
  end

  # The second interrupt is a Thread#raise: Ruby drops a second Thread#kill of a thread that is
  # already dying. (A second Ctrl-C on the main thread, or exit, are interrupts it delivers.)
  def test_a_second_interrupt_ends_a_slow_abort_at_once
    @proxy.add(:delay, method: "DELETE", query: /uploadId=/, seconds: 50, times: nil)
    log = capture_log
    uploader = Thread.new { @s3.upload(@path, key: "killed-twice") }
    uploader.report_on_exception = false
    wait_for_the_stall
    uploader.kill
    wait_for_the_abort
    interrupted_again_at = now
    uploader.raise(SecondInterrupt)
    ended = begin
      uploader.join(25)
    rescue SecondInterrupt # join raises it again where the thread ended with it
      true
    end
    assert ended, "the uploader ended after the second interrupt"
    assert_operator now - interrupted_again_at, :<, 3, "the second interrupt did not wait out the 5 s bound"
    assert_left_open_logged(log, "interrupted a second time before S3 answered")
  end

  # An upload that fails on its own, then a kill while its abort waits on S3: the kill ends it
  # within the bound, and the log (not the UploadError, which the kill discards) says what is left.
  def test_a_kill_during_the_abort_after_a_failure_is_bounded_and_logged
    @proxy.add(:respond, method: "PUT", query: /partNumber=1&/, status: 403,
                         body: HCTest::FaultProxy::ACCESS_DENIED)
    @proxy.add(:delay, method: "DELETE", query: /uploadId=/, seconds: 50, times: nil)
    log = capture_log
    uploader = Thread.new { @s3.upload(@path, key: "failed-then-killed") }
    wait_for_the_abort
    assert_kill_ends_it_within(uploader, 12)
    assert_match(/S3 answered HTTP 403 AccessDenied/, log.string, "the failure itself is in the log line")
    assert_left_open_logged(log, "interrupted, and S3 had not answered 5 s later")
  end

  def test_a_client_runs_one_operation_at_a_time
    uploader = Thread.new { @s3.upload(@path, key: "busy") }
    wait_for_the_stall
    error = assert_raises(HeapCapture::Error) { @s3.list }
    assert_match(/busy with another operation/, error.message)
  ensure
    uploader&.kill&.join(10)
  end

  # A script's client, in Ruby source: through the proxy, two transfers, a stall taken as one after 60 s.
  def script_client = client_source(endpoint: @proxy.endpoint, concurrency: 2, low_speed_time: 60)

  # Ctrl-C twice in a script whose main thread is its only thread (there, Ruby 3.1's rb_nogvl joins
  # a helper thread of its own afterwards, and that join runs interrupts: the second Ctrl-C once
  # raised out of the wait for the abort, before the transfer's thread was joined). The first stops
  # the upload; the second ends the slow abort at once; the process ends by SIGINT, and the log
  # says what may be left open.
  def test_two_ctrl_c_in_a_lone_main_thread_end_a_slow_abort_at_once
    @proxy.add(:delay, method: "DELETE", query: /uploadId=/, seconds: 50, times: nil)
    io = ruby_script(<<~RUBY)
      require "heapcapture"
      require "logger"
      HeapCapture.configure { |c| c.logger = Logger.new($stdout) }
      $stdout.sync = true
      s3 = #{script_client}
      s3.upload(#{@path.inspect}, key: "ctrl-c")
    RUBY
    wait_for_the_stall
    Process.kill("INT", io.pid)
    wait_for_the_abort
    again_at = now
    Process.kill("INT", io.pid)
    output = Timeout.timeout(20) { io.read }
    io.close
    assert_operator now - again_at, :<, 5, "the second Ctrl-C ended the abort's wait (S3 was given 5 s)"
    assert_equal "INT", $?.termsig && Signal.signame($?.termsig), "ended by SIGINT (#{$?.inspect}): #{output}"
    assert_includes output, "interrupted a second time before S3 answered"
    assert_equal 1, @proxy.initiated.size
  end

  # A process that exits while a background thread uploads: Ruby kills the thread at exit, the
  # upload is aborted at S3, and the process ends promptly.
  def test_process_exit_during_an_upload_aborts_it_and_exits_promptly
    script = <<~RUBY
      require "heapcapture"
      s3 = #{script_client}
      Thread.new { s3.upload(#{@path.inspect}, key: "exiting") }
      deadline = Time.now + 30
      sleep 0.05 until File.exist?(#{File.join(@tmpdir, 'go').inspect}) || Time.now > deadline
      puts "exiting"
    RUBY
    io = ruby_script(script)
    wait_for_the_stall
    File.write(File.join(@tmpdir, "go"), "")
    started = now
    output = Timeout.timeout(20) { io.read }
    io.close
    assert_operator now - started, :<, 10, "the process exited promptly"
    assert_includes output, "exiting"
    assert_equal 1, @proxy.initiated.size
    assert_equal @proxy.initiated, @proxy.aborted, "the upload was aborted at S3 on exit"
  end
end
