# frozen_string_literal: true

module HCTest
  # Finding a capture's dump child from the test and checking it was reaped.
  module ChildHelpers
    # Child pids of parent, from /proc/<pid>/stat ("pid (comm) state ppid ...").
    def children_of(parent)
      Dir.glob("/proc/[0-9]*/stat").filter_map do |stat|
        fields = File.read(stat).then { |s| s[(s.rindex(")") + 2)..].split }
        File.basename(File.dirname(stat)).to_i if fields[1].to_i == parent
      rescue Errno::ENOENT, Errno::ESRCH
        nil
      end
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
