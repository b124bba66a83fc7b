# frozen_string_literal: true

require "pg"
require "stringio"
require "logger"
require "rbconfig"
require "io/wait"

module HCTest
  # What the listener tests share: a recording capture hook (the seam the capture branch fills),
  # a log kept in memory, an independent pg connection to watch the server, armed subprocesses.
  module ListenerHelpers
    ROOT = File.expand_path("../..", __dir__)

    def setup
      super
      @pg = HCTest::Services.postgres
      @saved_env = ENV.to_h.slice("DYNO", "HEAPCAPTURE_DYNO")
      ENV.delete("DYNO")
      ENV.delete("HEAPCAPTURE_DYNO")
      @log = StringIO.new
      @log_mutex = Mutex.new
      HeapCapture.configure { |c| c.logger = Logger.new(SyncIO.new(@log, @log_mutex)) }
      @delivered = Queue.new
    end

    def teardown
      HeapCapture.stop
      wait_for_captures_to_end
      HCTest.stop_allocation_tracing # what arm turned on: the tests that follow start from none
      HeapCapture::Listener.reset_capture_hook!
      @watchers&.each { |conn| conn.close unless conn.finished? }
      (@children || []).each { |pid| kill_child(pid) }
      %w[DYNO HEAPCAPTURE_DYNO].each { |k| @saved_env.key?(k) ? ENV[k] = @saved_env[k] : ENV.delete(k) }
      super
    end

    # A capture the listener started runs on in its own thread after stop (with its retention
    # analysis, seconds): the next test's capture would be refused as "already running".
    def wait_for_captures_to_end(timeout = 60)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      sleep 0.05 while HeapCapture::Capture::LOCK.locked? && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    end

    # An IO for Logger that the listener thread and the test can share.
    class SyncIO
      def initialize(io, mutex)
        @io = io
        @mutex = mutex
      end

      def write(*args) = @mutex.synchronize { @io.write(*args) }
      def close; end
    end

    def log_text
      @log_mutex.synchronize { @log.string.dup }
    end

    # Records every payload the listener hands to the capture and answers like a capture would.
    def record_captures(delay: 0)
      delivered = @delivered
      HeapCapture::Listener.capture_hook = lambda do |payload|
        delivered << [payload, Process.clock_gettime(Process::CLOCK_MONOTONIC)]
        sleep delay if delay.positive?
        { "status" => "ok", "location" => "file:///tmp/test-#{payload.bytesize}", "bytes" => payload.bytesize }
      end
    end

    def arm(dyno = "web.1", **options)
      ENV["DYNO"] = dyno
      assert_equal true, HeapCapture.exclusive(**options), "exclusive should arm #{dyno}: #{log_text}"
      wait_for("the listener to connect") { HeapCapture.status[:connected] }
    end

    def next_delivery(timeout: 5)
      ListenerHelpers.pop_within(@delivered, timeout) or
        flunk "no delivery to the capture hook within #{timeout}s; log:\n#{log_text}"
    end

    # The queue's next item within seconds, or nil (Queue#pop takes a timeout from Ruby 3.2 on).
    def self.pop_within(queue, seconds)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
      loop do
        return queue.pop(true)
      rescue ThreadError
        return nil if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.005
      end
    end

    def wait_for(what, timeout: 15, &block)
      HCTest::Services.wait_until(what, timeout: timeout, interval: 0.01, &block)
    rescue HCTest::Services::Error => e
      flunk "#{e.message}; log:\n#{log_text}"
    end

    def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)

    # A pg connection of the test's own, LISTENing on channels, to see what reaches the server.
    def watcher(*channels)
      conn = PG.connect(@pg.url)
      channels.each { |ch| conn.exec("LISTEN #{conn.quote_ident(ch)}") }
      (@watchers ||= []) << conn
      conn
    end

    # Every notification the watcher receives within timeout seconds.
    def notifications(conn, timeout: 0.5)
      got = []
      deadline = monotonic + timeout
      while (left = deadline - monotonic).positive?
        conn.wait_for_notify(left) { |channel, pid, payload| got << [channel, pid, payload] } || break
      end
      got
    end

    # The replies (parsed JSON) the watcher receives on heapcapture_reply within timeout seconds.
    def replies(conn, timeout: 0.5) = notifications(conn, timeout: timeout).map { |_, _, json| JSON.parse(json) }

    def heapcapture_backends(application_name = "heapcapture")
      @pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = '#{application_name}'")
         .split("\n").map(&:to_i)
    end

    # A separate Ruby process armed as `dyno`; returns its pid once it listens.
    def spawn_armed(dyno, process_type: "web", dynos: 1)
      options = { dyno: dyno, process_type: process_type, dynos: dynos, fake_capture: true, linger: 60, connect_timeout: 10 }
      pid, line = HCTest.spawn_armed_process({ "DATABASE_URL" => @pg.url }, **options)
      (@children ||= []) << pid
      assert_equal "listening\n", line, "the subprocess armed as #{dyno} should listen"
      pid
    end

    def kill_child(pid)
      Process.kill("KILL", pid)
      Process.waitpid(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
  end

  # Spawns `ruby` armed with HeapCapture.exclusive as `dyno` (env adds to the environment; with
  # fake_capture, captures answer at once without dumping), waiting up to connect_timeout seconds
  # to connect; it stays `linger` seconds. Returns
  # [pid, its first line]: "listening\n" once connected, else "not connected\n" or nil (20 s bound).
  def self.spawn_armed_process(env, dyno:, fake_capture:, linger:, connect_timeout:, process_type: "web", dynos: 1)
    hook = 'HeapCapture::Listener.capture_hook = ->(payload) { { "status" => "ok", "location" => "file:///tmp/" + payload } }'
    script = <<~RUBY
      require "heapcapture"
      HeapCapture.configure { |c| c.logger = Logger.new($stderr) }
      #{fake_capture ? hook : ''}
      HeapCapture.exclusive(process_type: #{process_type.inspect}, dynos: #{dynos}, trace_allocations: false)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + #{Integer(connect_timeout)}
      sleep 0.01 until HeapCapture.status[:connected] || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      puts(HeapCapture.status[:connected] ? "listening" : "not connected")
      $stdout.flush
      sleep #{Integer(linger)}
    RUBY
    reader, writer = IO.pipe
    lib = File.expand_path("../../lib", __dir__)
    pid = Process.spawn(env.merge("DYNO" => dyno), RbConfig.ruby, "-I#{lib}", "-e", script,
                        out: writer, err: File::NULL)
    writer.close
    line = reader.wait_readable(20) && reader.gets
    reader.close
    [pid, line]
  end
end
