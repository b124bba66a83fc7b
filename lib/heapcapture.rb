# frozen_string_literal: true

# heapcapture: on-demand heap dumps of a production Ruby process, shipped to S3.
# The public methods are below, each one line into the file that does the work; every setting is
# in lib/heapcapture/configuration.rb. doc/architecture.md follows one capture through the files
# in the order it runs, down to the C in ext/heapcapture.
require_relative "heapcapture/version"
require_relative "heapcapture/heapcapture" # the native extension: defines HeapCapture::Error and friends
require_relative "heapcapture/errors"
require_relative "heapcapture/util"
require_relative "heapcapture/age"
require_relative "heapcapture/size"
require_relative "heapcapture/log"
require_relative "heapcapture/configuration"
require_relative "heapcapture/sigv4"
require_relative "heapcapture/dyno"
require_relative "heapcapture/wire"
require_relative "heapcapture/signing"
require_relative "heapcapture/tracing"
require_relative "heapcapture/listener"
require_relative "heapcapture/autocapture"
require_relative "heapcapture/arming"
require_relative "heapcapture/signaller"
require_relative "heapcapture/result_text"
require_relative "heapcapture/s3"
require_relative "heapcapture/destination"
require_relative "heapcapture/cgroup"
require_relative "heapcapture/memory_guard"
require_relative "heapcapture/summary"
require_relative "heapcapture/capture/retention_process"
require_relative "heapcapture/capture/summaries"
require_relative "heapcapture/capture/gc_hold"
require_relative "heapcapture/capture"
require_relative "heapcapture/railtie" if defined?(::Rails::Railtie)

module HeapCapture
  class << self
    # Arms allocation tracing and the listener when this process is one of the selected dynos;
    # otherwise logs why not and returns false, without opening any connection. Idempotent and
    # safe to call in every forked worker. The block is called with each capture's result.
    #
    # A setting that no capture could work with (no database, a destination that is neither s3://
    # nor file://, a missing tmpdir, ...) is logged as one ERROR line and exclusive returns false:
    # it never raises into on_worker_boot. Bad arguments (process_type, dynos, an unknown setting
    # name) are programming errors: ArgumentError.
    def exclusive(process_type: "web", dynos: 1, **settings, &block)
      Arming.exclusive(process_type: process_type, dynos: dynos, **settings, &block)
    end

    # What this process is doing, with Symbol keys.
    def status = Arming.status

    # Stops the listener and waits for its thread (at most about a second). Allocation tracing
    # stays on. Returns true when a listener was running.
    def stop = Arming.stop

    # Notifies every selected dyno (heapcapture_<process_type>_1 .. _<dynos>) with payload, at
    # most 7999 bytes of valid UTF-8. Returns the channels notified; with wait: (seconds), the
    # results of the processes that answered, once each has finished or the time is up. With
    # trace_for: (seconds, at most a day) each process turns on full allocation tracing now and
    # captures when that time is up (so wait longer than trace_for for the results).
    def signal(payload = "go", process_type: "web", dynos: 1, wait: nil, trace_for: nil)
      Signaller.new(payload, process_type: process_type, dynos: dynos, wait: wait, trace_for: trace_for).call
    end

    # Dumps this process's heap and stores it now; returns the result Hash (see Capture).
    #   HeapCapture.capture                          # settings from HeapCapture.config
    #   HeapCapture.capture("hourly", mode: :inline) # per-call overrides of any setting
    def capture(payload = nil, **settings) = Capture.new(payload, settings).run

    # The process-wide settings; every setting has an environment default.
    def config
      @config ||= Configuration.new
    end

    # HeapCapture.configure { |c| c.compression = :none }
    def configure
      yield config
      config
    end

    # Forget every setting (tests, and a process that wants to re-read its environment).
    def reset_config!
      @config = nil
    end
  end
end
