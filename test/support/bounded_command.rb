# frozen_string_literal: true

require "timeout"

module HCTest
  # A command run to its end, killed after timeout seconds: the one way the tests run a subprocess
  # whose output they read.
  module BoundedCommand
    module_function

    # [stdout, stderr, status] (status a signal's when it was killed).
    def run(env, *command, timeout:, chdir: Dir.pwd, stdin: File::NULL)
      out_r, out_w = IO.pipe
      err_r, err_w = IO.pipe
      pid = Process.spawn(env, *command, chdir: chdir, out: out_w, err: err_w, in: stdin)
      [out_w, err_w].each(&:close)
      readers = [out_r, err_r].map { |io| Thread.new { io.read } }
      status = begin
        Timeout.timeout(timeout) { Process.waitpid2(pid).last }
      rescue Timeout::Error
        Process.kill("KILL", pid)
        Process.waitpid2(pid).last
      end
      [*readers.map(&:value), status]
    ensure
      [out_r, err_r].each { |io| io.close unless io.nil? || io.closed? }
    end
  end
end
