# frozen_string_literal: true

module HCTest
  # Captures run in threads of their own, their dump children found and checked to be reaped.
  # A test that includes this calls stop_capture_threads in its teardown.
  module ChildHelpers
    STOP_TIMEOUT = 15 # seconds a killed capture thread gets to kill and reap its child and end

    # A capture in a thread of its own. Should the test fail midway (a wait that times out), that
    # thread would go on holding HeapCapture::Capture::LOCK and every later capture test would fail
    # with it: teardown kills it (which kills and reaps its dump child) and waits for it, bounded.
    def capture_thread(**settings)
      Thread.new { HeapCapture.capture(**settings) }.tap do |thread|
        thread.report_on_exception = false
        (@capture_threads ||= []) << thread
      end
    end

    # Starts a capture in its own thread and waits for its dump child: [thread, child pid].
    def start_capture(**settings)
      before = children_of(Process.pid)
      capture = capture_thread(**settings)
      child = HCTest::Services.wait_until("the dump child to start", timeout: 20, interval: 0.002) do
        (children_of(Process.pid) - before).first
      end
      [capture, child]
    end

    # Lets the dump child run in short bursts (SIGCONT, 1 ms, SIGSTOP) until its tempfile in dir
    # holds at least bytes, and leaves it stopped there: what the test does next then happens while
    # the dump is surely unfinished, on a fast machine as on a slow one. resume_child lets it go on.
    def hold_child_mid_dump(child, dir, bytes)
      Process.kill(:STOP, child)
      HCTest::Services.wait_until("the dump child to write #{bytes} bytes into #{dir}", timeout: 60, interval: 0) do
        next true if tempfile_bytes(dir) >= bytes

        Process.kill(:CONT, child)
        sleep 0.001
        Process.kill(:STOP, child)
        false
      end
      flunk "the dump child ended before it had written #{bytes} bytes" unless running?(child)
    end

    def resume_child(child) = Process.kill(:CONT, child)

    def stop_capture_threads
      return unless @capture_threads

      stuck = @capture_threads.reject do |thread|
        thread.kill
        begin
          thread.join(STOP_TIMEOUT)
        rescue StandardError
          true # it ended with the error the test raised into it (and asserted)
        end
      end
      flunk "#{stuck.size} capture thread(s) still running #{STOP_TIMEOUT} s after Thread#kill" unless stuck.empty?
      refute HeapCapture::Capture::LOCK.locked?, "the capture lock is released after the test"
    end

    # Child pids of parent, from /proc/<pid>/stat ("pid (comm) state ppid ...").
    def children_of(parent)
      Dir.glob("/proc/[0-9]*/stat").filter_map do |stat|
        fields = File.read(stat).then { |s| s[(s.rindex(")") + 2)..].split }
        File.basename(File.dirname(stat)).to_i if fields[1].to_i == parent
      rescue Errno::ENOENT, Errno::ESRCH
        nil
      end
    end

    # What the dump has written so far: the size of the one tempfile in dir, 0 before it exists.
    def tempfile_bytes(dir)
      Dir.children(dir).sum { |name| File.size(File.join(dir, name)) }
    rescue Errno::ENOENT
      0
    end

    def zombie?(pid)
      File.read("/proc/#{pid}/stat").then { |s| s[(s.rindex(")") + 2)] == "Z" }
    rescue Errno::ENOENT
      false
    end

    # Still running: it exists and has not ended (an ended child not yet reaped is a zombie).
    def running?(pid) = File.exist?("/proc/#{pid}") && !zombie?(pid)

    def assert_reaped(pid)
      refute File.exist?("/proc/#{pid}"), "dump child #{pid} still exists (zombie: #{zombie?(pid)})"
      assert_raises(Errno::ECHILD) { Process.waitpid(pid, Process::WNOHANG) }
    end
  end
end
