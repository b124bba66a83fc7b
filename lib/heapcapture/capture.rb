# frozen_string_literal: true

require "objspace"

module HeapCapture
  # One capture: check settings and free space, dump (fork or inline) into a 0600 tempfile,
  # store it at the destination (to S3, a fork-mode dump is uploaded while the child writes it),
  # remove the tempfile, answer with a result Hash.
  #
  # Bad settings raise (ConfigurationError, ArgumentError): nothing was tried. Failures while
  # dumping or storing (disk full, the child killed, S3 refusing) come back as a result with
  # "status" => "error" and are logged. One capture runs at a time per process; a call made
  # while one runs gets an error result saying so.
  class Capture
    include Summaries

    LOCK = Mutex.new
    GZIP_SUFFIX = "-heap.ndjson.gz"
    PLAIN_SUFFIX = "-heap.ndjson"
    NS_PER_MS = 1_000_000.0
    # tempfile names (dump_tempfile.c, Summary, RetentionProcess)
    ORPHAN = /\Aheapcapture-(\d+)-\h{16}(?:\.ndjson(?:\.gz)?(?:\.age)?|\.summary\.json(?:\.age)?|\.retention\.json(?:\.err)?)\z/

    class << self
      attr_accessor :last_stamp # the previous key's time: two dumps never share a key
    end

    def initialize(payload, settings)
      @payload = payload
      @config = settings.empty? ? HeapCapture.config : HeapCapture.config.dup.apply(settings)
    end

    def run
      destination = self.class.check!(@config)
      return error_result("a capture is already running in this process (pid #{Process.pid}); this one was not started") \
        unless LOCK.try_lock

      begin
        capture_into(destination)
      ensure
        LOCK.unlock
      end
    end

    # Raises ConfigurationError for a setting no capture can work with (a tmpdir that is missing or
    # not writable, a destination that is not s3:// or file://, missing S3 credentials, fork mode
    # where nothing forks); returns the Destination. Run by every capture, and by exclusive when it
    # arms, so that such a setting shows at boot rather than when someone signals.
    def self.check!(config)
      tmpdir = config.tmpdir.to_s
      unless File.directory?(tmpdir)
        raise ConfigurationError, "tmpdir #{tmpdir.inspect} is not a directory; set tmpdir " \
                                  "(HEAPCAPTURE_TMPDIR) to an existing writable directory"
      end
      unless File.writable?(tmpdir)
        raise ConfigurationError, "tmpdir #{tmpdir.inspect} is not writable by this process " \
                                  "(read-only or no permission); set tmpdir (HEAPCAPTURE_TMPDIR) to a writable directory"
      end
      if config.mode == :fork && !Process.respond_to?(:_fork)
        raise ConfigurationError, "mode fork needs Process._fork (Ruby 3.1+ on a platform that forks); " \
                                  "use mode: :auto or :inline"
      end
      if config.redact == :strings && !Dump::REDACTION
        raise ConfigurationError, "redact: :strings needs libsodium, which this build of heapcapture was made " \
                                  "without: install libsodium-dev (Homebrew: libsodium) and reinstall the gem"
      end
      Destination.for(config)
    end

    # The VM's own fork, without the Ruby-level hooks others add by prepending to Process._fork:
    # the child must not run them (they reconnect databases, restart agents' threads).
    def self.vm_fork
      method = Process.method(:_fork)
      method = method.super_method while method.owner != Process.singleton_class && method.super_method
      method
    end

    private

    def gzip? = @config.compression == :gzip
    def redact? = @config.redact == :strings
    def encrypt? = !@config.encrypt_to.nil?

    def capture_into(destination)
      key = destination.prefix + object_name
      remove_orphaned_tempfiles
      estimate = Dump.estimate(gzip?)
      Dump.check_space(@config.tmpdir, estimate) if estimate
      rss = Dump.rss
      @facts = Summary.capture_facts # before the dump: a compaction after it is not the dump's
      @decision = MemoryGuard.decide(@config, rss)
      raise DumpError, @decision.reason unless @decision.mode

      started = Util.monotonic
      dump, stored = watching_memory(rss) do |watch|
        @decision.mode == :fork ? fork_capture(destination, key, estimate, watch, rss) : inline_capture(destination, key)
      end
      # What storing took beyond the dump: a streamed upload ran mostly while the child dumped (the
      # retention analysis after it is not counted: the dump was stored by then).
      upload_ms = ms([(dump["stored_at"] - started) * 1000 - dump["dump_ns"] / NS_PER_MS, 0].max)
      summary = store_summary(dump["summary"], destination, key)
      ok_result(dump, stored, upload_ms).merge("summary" => summary).tap { |result| log_stored(result) }
    rescue HeapCapture::Error, SystemCallError, IOError => e
      error_result(Util.unprefixed(e.message))
    end

    # The capture's peak extra memory, from before the dump until it is stored (Dump::MemoryWatch);
    # a fork capture's figure raises what the next one is estimated to cost.
    def watching_memory(rss)
      watch = Dump::MemoryWatch.start
      yield watch
    ensure
      @extra_memory = watch&.stop
      MemoryGuard.learn(@extra_memory, rss) if @decision&.mode == :fork
    end

    # The child dumps into its tempfile; to S3 the upload starts at once and sends each part as
    # soon as the child has written it. The child is killed if still running when this ends (an
    # upload that failed, an exception), and its tempfile removed on every path. It only dumps:
    # the summary is made once it has exited (with_retention), where it keeps no page shared, but
    # for an encrypted dump, whose tempfile nothing here can read back. The app's major GCs are held
    # off while it lives, where Ruby allows (GcHold).
    def fork_capture(destination, key, estimate, watch, rss)
      @gc_hold = GcHold.new(rss)
      child = Dump.fork_start(@config.tmpdir, gzip?, self.class.vm_fork, redact?, encrypt?, @config.encrypt_to)
      @gc_hold.follow(child)
      watch.child = child.pid
      if destination.streams?
        stored = store_while_dumping(destination, child, key, estimate)
        dump = wait_for(child, watch)
      else
        dump = wait_for(child, watch)
        stored = destination.store(dump["path"], key)
      end
      dump["stored_at"] = Util.monotonic
      @gc_hold.release("the dump child exited")
      dump["summary"] = with_retention(dump) # the child is gone: no page is shared now
      [dump, stored]
    ensure
      @gc_hold&.release
      watch.forget_child
      child&.close
    end

    def wait_for(child, watch)
      child.wait
    ensure
      watch.forget_child # it is reaped: its pid may be another process's soon
    end

    # When the dump itself failed, that is the cause to report, not the upload it cut short.
    def store_while_dumping(destination, child, key, estimate)
      destination.store_growing(child, key, estimate || 0)
    rescue UploadError
      failure = child.failure
      raise DumpError, failure if failure

      raise
    end

    # The summary is read from the finished tempfile on a thread of its own while the dump is
    # stored (C, without the GVL): made in the stream it would lengthen the dump, during which the
    # app is stopped but for the IO's writes (doc/figures.md). An encrypted tempfile
    # cannot be read back here (this process holds no identity): its summary is made in the stream.
    def inline_capture(destination, key)
      dump = Dump.inline_dump(@config.tmpdir, gzip?, redact?, encrypt?, @config.encrypt_to)
      summarizing = Thread.new do
        Thread.current.name = "heapcapture-summary"
        with_retention(dump)
      end
      stored = destination.store(dump["path"], key)
      dump["stored_at"] = Util.monotonic
      dump["summary"] = summarizing.value
      [dump, stored]
    ensure
      summarizing&.join
      File.unlink(dump["path"]) if dump && File.exist?(dump["path"])
    end

    # A process killed mid-capture (SIGKILL, OOM) leaves its 0600 tempfile behind; its dump child
    # died with it. The next capture removes such files of processes that no longer exist.
    def remove_orphaned_tempfiles
      Dir.each_child(@config.tmpdir) do |name|
        pid = name[ORPHAN, 1]&.to_i or next
        next if pid == Process.pid || process_alive?(pid)

        File.unlink(File.join(@config.tmpdir, name))
        Log.info("removed #{name} from #{@config.tmpdir}, left by process #{pid}, which no longer runs")
      rescue SystemCallError
        next
      end
    end

    def process_alive?(pid)
      Process.kill(0, pid)
      true
    rescue Errno::ESRCH
      false
    rescue Errno::EPERM
      true
    end

    # <UTC time as 2026-11-21T20-30-42Z>-<dyno>-pid<pid>-heap.ndjson.gz (.age after it when encrypted)
    def object_name
      now = Time.now.utc
      if self.class.last_stamp && now.to_i <= self.class.last_stamp
        sleep(self.class.last_stamp + 1 - now.to_f) # a second capture within the same second
        now = Time.now.utc
      end
      self.class.last_stamp = now.to_i
      "#{now.strftime('%Y-%m-%dT%H-%M-%SZ')}-#{Dyno.label}-pid#{Process.pid}#{gzip? ? GZIP_SUFFIX : PLAIN_SUFFIX}" \
        "#{Age::SUFFIX if encrypt?}"
    end

    def ok_result(dump, stored, upload_ms)
      base("ok").merge(
        "location" => stored["location"], "url" => stored["url"], "bytes" => dump["bytes"],
        "raw_bytes" => dump["raw_bytes"], "pause_ms" => ms(dump["pause_ns"] / NS_PER_MS),
        "dump_ms" => ms(dump["dump_ns"] / NS_PER_MS), "upload_ms" => upload_ms,
        "extra_memory_bytes" => @extra_memory
      )
    end

    # Every failure is logged here, once (the listener's line only says who it replied to).
    def error_result(message)
      Log.error("capture failed: #{message}")
      base("error").merge("error" => message)
    end

    def base(status)
      { "status" => status, "dyno" => Dyno.label, "pid" => Process.pid, "payload" => @payload,
        "location" => nil, "url" => nil, "bytes" => nil, "raw_bytes" => nil, "pause_ms" => nil,
        "dump_ms" => nil, "upload_ms" => nil, "mode" => @decision&.mode&.to_s, "mode_reason" => @decision&.reason,
        "extra_memory_bytes" => @extra_memory, "memory_limit_bytes" => @decision&.limit, "tracing" => Tracing.description,
        "redacted" => redact? ? "strings" : nil, "encrypted" => encrypt? ? "age" : nil, "summary" => nil, "error" => nil }
    end

    def log_stored(result)
      Log.info("heap dump stored at #{result['location']} (#{result['bytes']} bytes, #{result['raw_bytes']} raw; " \
               "#{result['mode']} mode paused the app #{result['pause_ms']} ms, dump #{result['dump_ms']} ms, " \
               "store #{result['upload_ms']} ms after the dump; #{ResultText.memory(result)}; #{result['mode_reason']}" \
               "#{"; #{@gc_hold.description}" if @gc_hold&.description})")
    end

    def ms(value) = value.round(2)
  end
end
