# frozen_string_literal: true

require "json"
require "rbconfig"

module HeapCapture
  class Capture
    # The capture-time retention analysis, in a Ruby process of its own (retention_main.rb) started
    # with posix_spawn: it shares no page with the app (a fork child would, and every page the app writes
    # while it lives would be copied), its ~50 bytes an object are not the app's RSS (inline mode
    # keeps its promise of ~64 MB), and the app's GVL and GC are not involved. Runs on the app side.
    module RetentionProcess
      MAIN = File.expand_path("retention_main.rb", __dir__)
      # How long it may take: far more than it took here (doc/figures.md), for a slow, busy machine.
      TIMEOUT_S = 120
      TIMEOUT_S_PER_GB = 60
      # What of the app's environment it must not take: bundler's -rbundler/setup, the app's paths.
      ENV_DROPPED = { "RUBYOPT" => nil, "RUBYLIB" => nil }.freeze
      # Its output files: new, the app's user's only.
      CREATED = File::WRONLY | File::CREAT | File::EXCL

      module_function

      # The summary of the dump at path with its retention analysis (Summary.of_file's Hash), with
      # "retention_peak_bytes", the analysis process's peak RSS; with tree, its "tree" too (the
      # report page's). DumpError saying why when it could not be made; the process is killed when
      # it outlives its time, or when this thread is killed or raised into (Listener#stop): a kill
      # that comes while it starts waits until it has a waiter, so it is never left running unseen.
      def summarize(path, top:, share:, tmpdir:, raw_bytes:, tree: false)
        out = output_path(tmpdir)
        err = "#{out}.err"
        waiter = Thread.handle_interrupt(Object => :never) do
          Process.detach(spawn([path, top.to_s, share.to_s, *("tree" if tree)], out, err))
        end
        seconds = timeout(raw_bytes)
        status = waiter.join(seconds) && waiter.value
        raise DumpError, "the retention analysis took more than #{seconds} s and was stopped" unless status
        raise DumpError, "the retention analysis failed: #{failure(status, err)}" unless status.success?

        JSON.parse(File.read(out))
      ensure
        stop(waiter) if waiter
        [out, err].each { |file| File.unlink(file) if file && File.exist?(file) }
      end

      def timeout(raw_bytes) = TIMEOUT_S + (TIMEOUT_S_PER_GB * raw_bytes.to_i / (1024**3))

      def output_path(tmpdir)
        Util.tempfile_path(tmpdir, ".retention.json")
      end

      # Started without forking the app (Dump.spawn_process: posix_spawn, which copies no page
      # table; Ruby's Process.spawn forks outright when run as root, 24-40 ms of GVL for a 468 MB
      # app). Process.spawn where the build has no spawn_process (musl, macOS, glibc before 2.34).
      # Its pid.
      def spawn(args, out, err)
        argv = ["--disable-gems", MAIN, *args]
        return spawn_forking(argv, out, err) unless Dump.respond_to?(:spawn_process)

        File.open(out, CREATED, 0o600) do |o|
          File.open(err, CREATED, 0o600) do |e|
            Dump.spawn_process(RbConfig.ruby, [RbConfig.ruby, *argv], environment, o.fileno, e.fileno)
          end
        end
      rescue SystemCallError => e
        raise DumpError, "could not start the retention analysis: #{e.message}"
      end

      def spawn_forking(argv, out, err)
        Process.spawn(ENV_DROPPED, RbConfig.ruby, *argv, in: File::NULL, out: [out, CREATED, 0o600],
                                                         err: [err, CREATED, 0o600], close_others: true)
      end

      # The app's environment as "NAME=value", without ENV_DROPPED's.
      def environment = ENV.to_h.except(*ENV_DROPPED.keys).map { |name, value| "#{name}=#{value}" }

      # Kills the process unless it has ended, and waits for it to be reaped.
      def stop(waiter)
        return if waiter.join(0)

        begin
          Process.kill(:KILL, waiter.pid)
        rescue Errno::ESRCH
          nil # it ended just now
        end
        waiter.join
      end

      def failure(status, err)
        said = File.exist?(err) ? File.read(err, 2000).strip : ""
        how = if status.signaled?
                "killed by signal #{status.termsig}#{', as the kernel does when memory runs out' if status.termsig == 9}"
              else
                "exit status #{status.exitstatus}"
              end
        said.empty? ? how : "#{said} (#{how})"
      end
    end
  end
end
