# frozen_string_literal: true

require "test_helper"
require "open3"
require_relative "../support/listener_helpers"

# exe/heapcapture run as a subprocess, the way people run it.
class CLITest < HCTest::TestCase
  include HCTest::ListenerHelpers

  EXE = File.join(HCTest::ListenerHelpers::ROOT, "exe/heapcapture")

  def heapcapture(*args, env: {})
    Open3.capture3({ "DATABASE_URL" => @pg.url }.merge(env), RbConfig.ruby, EXE, *args)
  end

  def test_help_at_the_top_and_for_signal
    out, _err, status = heapcapture("--help")
    assert status.success?
    assert_match(/Usage: heapcapture COMMAND/, out)
    assert_match(/^  signal /, out)
    out, _err, status = heapcapture("signal", "--help")
    assert status.success?
    %w[--process-type --dynos --wait --trace-for 7999].each { |word| assert_includes out, word }
    out, _err, status = heapcapture("--version")
    assert status.success?
    # gem install shows the build's output only with --verbose: this says which gzip it took.
    assert_equal "heapcapture #{HeapCapture::VERSION} (gzip by ISA-L, redaction by libsodium, Ruby #{RUBY_VERSION})\n", out
    _out, err, status = heapcapture("frobnicate")
    assert_equal 2, status.exitstatus
    assert_match(/unknown command "frobnicate"/, err)
  end

  def test_signal_without_wait_says_what_it_notified
    conn = watcher("heapcapture_worker_1", "heapcapture_worker_2")
    out, err, status = heapcapture("signal", "it's $$ \\ é", "--process-type", "worker", "--dynos", "2")
    assert status.success?, err
    assert_equal "signalled heapcapture_worker_1\nsignalled heapcapture_worker_2\n", out
    assert_equal ["it's $$ \\ é"], notifications(conn).map(&:last).uniq
  end

  def test_signal_with_wait_prints_one_line_per_result_and_exits_zero_when_all_are_ok
    pids = [spawn_armed("web.1", dynos: 2), spawn_armed("web.2", dynos: 2)]
    out, err, status = heapcapture("signal", "--dynos", "2", "--wait", "15")
    assert status.success?, "#{out}\n#{err}"
    lines = out.lines.map(&:chomp).sort
    assert_equal 2, lines.size, out
    assert_match(%r{\Aweb\.1 pid #{pids[0]}: ok file:///tmp/go\z}, lines[0])
    assert_match(%r{\Aweb\.2 pid #{pids[1]}: ok file:///tmp/go\z}, lines[1])
  end

  # --trace-for: the armed process traces for the window, then captures; the result comes as usual.
  def test_signal_with_trace_for_captures_once_the_window_has_passed
    pid = spawn_armed("web.1")
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    out, err, status = heapcapture("signal", "traced", "--trace-for", "1.5", "--wait", "20")
    assert status.success?, "#{out}\n#{err}"
    assert_equal "web.1 pid #{pid}: ok file:///tmp/traced\n", out
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :>=, 1.5, "the capture waited for the window"
    _out, err, status = heapcapture("signal", "--trace-for", "0")
    assert_equal 2, status.exitstatus
    assert_match(/trace_for must be a number of seconds above 0 and at most 86400/, err)
  end

  # An hourly scheduler job must not "succeed" without a dump: a selected dyno that sends nothing
  # is named, and the command exits 1 even though every result that came is ok.
  def test_signal_with_wait_names_each_selected_dyno_that_did_not_answer_and_exits_one
    pid = spawn_armed("web.1", dynos: 2)
    out, err, status = heapcapture("signal", "--dynos", "2", "--wait", "4")
    assert_equal 1, status.exitstatus, "#{out}\n#{err}"
    assert_equal "web.1 pid #{pid}: ok file:///tmp/go\n", out
    assert_equal "heapcapture: web.2: no reply within 4.0 s on heapcapture_web_2 (is a process armed there? " \
                 "see HeapCapture.exclusive)\n", err
  end

  def test_signal_with_wait_exits_one_when_nobody_answers_or_a_capture_fails
    out, err, status = heapcapture("signal", "--wait", "0.3")
    assert_equal 1, status.exitstatus
    assert_equal "", out
    assert_equal "heapcapture: web.1: no reply within 0.3 s on heapcapture_web_1 (is a process armed there? " \
                 "see HeapCapture.exclusive)\n", err

    HeapCapture::Listener.capture_hook = ->(_payload) { raise "no space left on device" }
    arm("web.1")
    out, _err, status = heapcapture("signal", "--wait", "10")
    assert_equal 1, status.exitstatus
    assert_equal "web.1 pid #{Process.pid}: error RuntimeError: no space left on device\n", out
  end

  def test_bad_input_is_a_usage_error_and_nothing_is_sent
    conn = watcher("heapcapture_web_1")
    [["signal", "a" * 8000], ["signal", "--dynos", "zero"], ["signal", "--process-type", "Web!"],
     %w[signal one two]].each do |args|
      _out, err, status = heapcapture(*args)
      assert_equal 2, status.exitstatus, "#{args.inspect[0, 60]}: #{err}"
      assert_match(/\Aheapcapture: .+\(see heapcapture signal --help\)\n\z/, err)
    end
    assert_empty notifications(conn)
  end

  def test_no_database_is_a_clear_failure
    _out, err, status = heapcapture("signal", env: { "DATABASE_URL" => nil, "HEAPCAPTURE_DATABASE_URL" => nil })
    assert_equal 1, status.exitstatus
    assert_match(/set DATABASE_URL/, err)
  end

  # libpq quotes the token it cannot parse; the password must not reach the terminal.
  def test_a_malformed_database_url_never_prints_its_password
    _out, err, status = heapcapture("signal", env: { "DATABASE_URL" => "postgres://u:s3cr%zzet@127.0.0.1:1/db" })
    assert_equal 1, status.exitstatus
    assert_match(/connecting to PostgreSQL failed: invalid percent-encoded token/, err)
    refute_includes err, "s3cr"
  end

  # libpq would take these for a database name and fail about a local socket.
  def test_a_database_url_that_is_not_postgresql_is_refused_in_words
    ["mysql://app:hunter2@127.0.0.1/db", "postgres//app:hunter2@127.0.0.1/db"].each do |url|
      _out, err, status = heapcapture("signal", env: { "DATABASE_URL" => url })
      assert_equal 1, status.exitstatus, url
      assert_match(%r{\Aheapcapture: database_url ".*app:\*\*\*@127.0.0.1/db" is neither a PostgreSQL URL }, err)
      assert_equal 1, err.lines.size
      refute_includes err, "hunter2"
    end
  end
end
