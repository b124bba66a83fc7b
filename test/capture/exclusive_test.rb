# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"
require "open3"

# HeapCapture.exclusive: which process arms, what it opens, status, stop, idempotence, fork.
class ExclusiveTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  def test_the_selected_dyno_arms_and_listens_on_its_own_connection
    record_captures
    arm("web.1")
    status = HeapCapture.status
    assert_equal true, status[:armed]
    assert_equal "web.1", status[:dyno]
    assert_equal "heapcapture_web_1", status[:channel]
    assert_equal Process.pid, status[:pid]
    assert_equal [status[:backend_pid]], heapcapture_backends
    # Its own connection, with keepalives, listening on the channel.
    row = @pg.psql("SELECT a.application_name FROM pg_stat_activity a WHERE a.pid = #{status[:backend_pid]}")
    assert_equal "heapcapture", row
    assert_match(/armed in web\.1 \(pid #{Process.pid}\): listening on heapcapture_web_1/, log_text)
  end

  def test_processes_that_are_not_selected_return_false_log_why_and_open_no_connection
    wait_for("no heapcapture connection left from earlier tests") { heapcapture_backends.empty? }
    [
      [{ "DYNO" => "web.2" }, { process_type: "web", dynos: 1 }, /DYNO is "web\.2", expected web\.1/],
      [{ "DYNO" => "worker.1" }, { process_type: "web" }, /DYNO is "worker\.1", expected web\.1/],
      [{}, {}, /neither HEAPCAPTURE_DYNO nor DYNO is set, expected web\.1/],
      [{ "DYNO" => "web.1", "HEAPCAPTURE_DYNO" => "web.3" }, { dynos: 2 },
       /HEAPCAPTURE_DYNO is "web\.3", expected one of web\.1\.\.web\.2/]
    ].each do |env, options, reason|
      ENV.delete("DYNO")
      ENV.delete("HEAPCAPTURE_DYNO")
      env.each { |k, v| ENV[k] = v }
      before = log_text.size
      assert_equal false, HeapCapture.exclusive(**options), "#{env} #{options}"
      line = log_text[before..]
      assert_equal 1, line.lines.size, "one log line: #{line}"
      assert_match reason, line
      assert_match(/heapcapture: not armed in this process/, line)
      assert_match(/set HEAPCAPTURE_DYNO=web\.1 to select this process off Heroku/, line)
      refute HeapCapture.status[:armed]
    end
    sleep 0.2 # a connection, had one been opened, would show by now
    assert_empty heapcapture_backends, "no connection may be opened by a process that is not selected"
  end

  def test_heapcapture_dyno_wins_over_dyno
    record_captures
    ENV["HEAPCAPTURE_DYNO"] = "web.2"
    ENV["DYNO"] = "run.1234"
    assert_equal true, HeapCapture.exclusive(dynos: 2)
    assert_equal "heapcapture_web_2", HeapCapture.status[:channel]
  end

  def test_exclusive_is_idempotent_and_takes_settings
    record_captures
    arm("web.1", trace_allocations: false)
    backend = HeapCapture.status[:backend_pid]
    5.times { assert_equal true, HeapCapture.exclusive(trace_allocations: false) }
    assert_equal [backend], heapcapture_backends, "still one connection"
    assert_equal 1, Thread.list.count { |t| t.name == "heapcapture-listener" }
  end

  # Tracing is process-wide and cannot be switched off again here: each case runs in a fresh process.
  def test_allocation_tracing_starts_when_armed_sampled_by_default_full_or_off_when_told
    script = <<~RUBY
      require "heapcapture"
      HeapCapture.configure { |c| c.logger = Logger.new(File::NULL) }
      HeapCapture.exclusive(**eval(ARGV[0]))
      obj = Object.new
      p [HeapCapture.status[:tracing][/[a-z]+/], ObjectSpace.allocation_sourcefile(obj), HeapCapture::Tracer.stats["running"],
         Thread.list.count { |t| t.name == "heapcapture-sampler" }]
      HeapCapture.stop
    RUBY
    run = lambda do |options|
      IO.popen({ "DYNO" => "web.1", "DATABASE_URL" => @pg.url },
               [RbConfig.ruby, "-I#{ROOT}/lib", "-robjspace", "-e", script, options], &:read)
    end
    assert_equal %(["sampled", nil, true, 1]\n), run.call("{}"), "the default: the sampled tracer, not ObjectSpace's"
    assert_equal %(["full", "-e", false, 0]\n), run.call("{ trace_allocations: :full }")
    assert_equal %(["full", "-e", false, 0]\n), run.call("{ trace_allocations: true }")
    assert_equal %(["off", nil, false, 0]\n), run.call("{ trace_allocations: false }")
    assert_equal %(["off", nil, false, 0]\n), run.call("{ trace_allocations: :off }")
  end

  def test_bad_arguments_are_argument_errors
    ENV["DYNO"] = "web.1"
    assert_raises(ArgumentError) { HeapCapture.exclusive(process_type: "Web") }
    assert_raises(ArgumentError) { HeapCapture.exclusive(process_type: "web-1") }
    assert_raises(ArgumentError) { HeapCapture.exclusive(process_type: "web", dynos: 0) }
    error = assert_raises(ArgumentError) { HeapCapture.exclusive(process_type: "w" * 60) }
    assert_match(/PostgreSQL allows 63/, error.message)
    assert_raises(ArgumentError) { HeapCapture.exclusive(bogus_setting: 1) }
    refute HeapCapture.status[:armed]
  end

  # Settings no capture could work with show when arming, not when someone signals: one ERROR line
  # naming the setting, false, no connection opened; never an exception into on_worker_boot.
  def test_settings_that_cannot_work_are_logged_at_arming_and_it_does_not_arm
    wait_for("no heapcapture connection left from earlier tests") { heapcapture_backends.empty? }
    ENV["DYNO"] = "web.1"
    missing = File.join(Dir.tmpdir, "heapcapture-missing-#{rand(1 << 30)}")
    [
      [{ destination: "ftp://dumps.example/x" }, %r{destination "ftp://dumps.example/x" is neither s3://bucket/prefix/}],
      [{ tmpdir: missing }, /tmpdir "#{Regexp.escape(missing)}" is not a directory; set tmpdir \(HEAPCAPTURE_TMPDIR\)/],
      [{ database_url: nil }, /no database to listen on or signal through: set DATABASE_URL/],
      [{ database_url: "mysql://app:hunter2@127.0.0.1/db" }, %r{database_url "mysql://app:\*\*\*@127.0.0.1/db" is neither}],
      [{ compression: :brotli }, /compression must be one of gzip, none, got :brotli/]
    ].each do |settings, reason|
      HeapCapture.reset_config!
      HeapCapture.configure { |c| c.logger = Logger.new(SyncIO.new(@log, @log_mutex)) }
      before = log_text.size
      assert_equal false, HeapCapture.exclusive(**settings), settings.inspect
      line = log_text[before..]
      assert_equal 1, line.lines.size, "one log line: #{line}"
      assert_match(/\AE, .*ERROR -- : heapcapture: not armed in web\.1 \(pid #{Process.pid}\): /, line)
      assert_match reason, line
      refute_match(/hunter2/, line)
      refute HeapCapture.status[:armed]
    end
    sleep 0.2
    assert_empty heapcapture_backends
  end

  def test_process_type_may_be_a_symbol
    record_captures
    arm("web.1", process_type: :web)
    assert_equal "heapcapture_web_1", HeapCapture.status[:channel]
  end

  def test_an_unreachable_database_arms_anyway_retries_in_the_background_and_logs_no_password
    record_captures
    ENV["DYNO"] = "web.1"
    port = HCTest::Services.free_port
    started = monotonic
    assert_equal true, HeapCapture.exclusive(database_url: "postgres://postgres:hunter2@127.0.0.1:#{port}/postgres")
    # It waits for the first attempt's answer (a refusal comes in a millisecond), not for
    # ARM_TIMEOUT (2 s: every puma worker boot waited that long during an outage).
    held = monotonic - started
    puts "\nexclusive with PostgreSQL refusing: returned in #{(held * 1000).round(1)} ms"
    assert_operator held, :<, HeapCapture::ARM_TIMEOUT / 4.0, "exclusive returns once the first attempt has failed"
    wait_for("two failed attempts") { log_text.scan(/next attempt in \d+ ms/).size >= 2 }
    refute HeapCapture.status[:connected]
    assert HeapCapture.status[:armed]
    assert_match(/not connected yet; retrying in the background/, log_text)
    assert_match(/port #{port} failed: Connection refused/, log_text)
    refute_match(/hunter2/, log_text)
    log_text.each_line { |line| assert line.include?("heapcapture: "), "prefixed: #{line}" }
    started = monotonic
    assert_equal true, HeapCapture.stop
    assert_operator monotonic - started, :<, 1.0, "stop interrupts the backoff"
  end

  def test_stop_and_thread_kill_return_at_once_and_close_the_connection
    record_captures
    arm("web.1")
    started = monotonic
    assert_equal true, HeapCapture.stop
    assert_operator monotonic - started, :<, 1.0
    refute HeapCapture.status[:armed]
    wait_for("the listener's backend to go") { heapcapture_backends.empty? }
    assert_equal false, HeapCapture.stop, "nothing left to stop"

    arm("web.1")
    thread = Thread.list.find { |t| t.name == "heapcapture-listener" }
    started = monotonic
    thread.kill
    assert thread.join(1), "Thread#kill ends the listener thread"
    assert_operator monotonic - started, :<, 1.0
    refute HeapCapture.status[:armed]
    wait_for("the killed listener's backend to go") { heapcapture_backends.empty? }
    assert_equal true, HeapCapture.exclusive, "exclusive arms again after a kill"
    wait_for("the listener to connect again") { HeapCapture.status[:connected] }
  end

  # ... and quiet: an exit is no reason to warn that the listener thread ended.
  def test_process_exit_is_not_held_up_by_the_listener
    script = <<~RUBY
      require "heapcapture"
      HeapCapture.configure { |c| c.logger = Logger.new($stderr) }
      HeapCapture.exclusive(trace_allocations: false)
      sleep 0.01 until HeapCapture.status[:connected]
      $stdout.puts "armed"; $stdout.flush
    RUBY
    started = monotonic
    out, err, status = Open3.capture3({ "DYNO" => "web.1", "DATABASE_URL" => @pg.url }, RbConfig.ruby, "-I#{ROOT}/lib",
                                      "-e", script)
    assert_equal "armed\n", out
    assert status.success?, err
    assert_operator monotonic - started, :<, 10, "exit with an armed listener is prompt"
    assert_match(/heapcapture: armed in web\.1/, err)
    # (the one WARN: no signal_key, said at arming)
    refute_match(/WARN(?! -- : heapcapture: no signal_key)|ERROR|ended without/, err)
  end

  def test_a_forked_child_drops_the_inherited_listener_without_touching_the_parents_session
    record_captures
    arm("web.1")
    parent_backend = HeapCapture.status[:backend_pid]
    reader, writer = IO.pipe
    child = fork do
      reader.close
      status = HeapCapture.status
      writer.puts [status[:armed], status[:connected]].inspect
      GC.start # collecting the inherited connection object must not touch the parent's socket either
      writer.close
    end
    writer.close
    assert_equal "[false, false]\n", reader.gets, "the child sees no armed listener"
    Process.waitpid(child)
    assert $?.success?
    sleep 0.2
    assert_equal parent_backend, HeapCapture.status[:backend_pid], "the parent keeps its connection"
    assert_equal [parent_backend], heapcapture_backends
    HeapCapture.signal("after the child")
    assert_equal "after the child", next_delivery.first, "the parent still receives"
    refute_match(/connection to PostgreSQL lost/, log_text)
  end

  def test_exclusive_in_a_forked_child_arms_a_fresh_listener_of_its_own
    record_captures
    arm("web.1")
    parent_backend = HeapCapture.status[:backend_pid]
    reader, writer = IO.pipe
    child = fork do
      reader.close
      HeapCapture::Listener.capture_hook = ->(payload) { { "status" => "ok", "location" => "child:#{payload}" } }
      HeapCapture.exclusive
      deadline = monotonic + 10
      sleep 0.01 until HeapCapture.status[:connected] || monotonic > deadline
      writer.puts HeapCapture.status[:backend_pid]
      writer.flush
      sleep 30
    end
    (@children ||= []) << child
    writer.close
    child_backend = reader.gets.to_i
    reader.close
    refute_equal parent_backend, child_backend
    assert_equal [parent_backend, child_backend].sort, heapcapture_backends.sort
    results = HeapCapture.signal("both", wait: 10)
    assert_equal [child, Process.pid].sort, results.map { |r| r["pid"] }.sort, results.inspect
    assert_equal "both", next_delivery.first
  end
end
