# frozen_string_literal: true

module HeapCapture
  class Capture
    # A capture's summary, in the app's process once the dump is written: the fork child's tally
    # (or, inline, one read from the tempfile), the retention analysis when the memory guard says it
    # fits, stored beside the dump and cut to what a result carries. Included in Capture.
    module Summaries
      private

      # The summary the dump child made as the dump streamed, as a Hash; nil (and a warning) when it
      # made none (out of memory in the child).
      def parse_summary(dump)
        return JSON.parse(dump["summary_json"]).merge("raw_bytes" => dump["raw_bytes"]) if dump["summary_json"]

        Log.warn("the heap dump has no summary: #{dump['summary_error'] || 'none was made'}")
        nil
      end

      # The summary: stored beside the dump, its top in the result. When it cannot be stored, the
      # dump still is: a warning says why.
      def store_summary(summary, destination, key)
        return nil unless summary

        summary.merge!(@facts)
        summary["redacted"] = "strings" if redact?
        Summary.store(summary, destination, key, @config.tmpdir)
        Summary.for_result(summary)
      rescue HeapCapture::Error, SystemCallError, IOError => e
        Log.warn("the heap dump's summary was not stored: #{Util.unprefixed(e.message)}")
        summary && Summary.for_result(summary)
      end

      # The summary with the retention analysis (what is held, by whom, the suspects), read from the
      # finished tempfile in this process without the GVL, when the memory guard says it fits: the
      # fork child must not live longer for it (every page the app writes meanwhile is copied), and
      # once the child is gone this process shares nothing with it. Counted in extra_memory_bytes
      # (it runs inside watching_memory). When it does not fit, the tally (the fork child's; inline,
      # read here) with "retention" saying why: `heapcapture report KEY` computes it from the dump.
      def with_retention(tally, dump)
        fits, why = MemoryGuard.retention_fits(@config, MemoryGuard.retention_need(tally, dump["raw_bytes"]))
        if fits
          started = Util.monotonic
          summary = Summary.of_file(dump["path"], top: Summary::STORED_SITES, strings: false)
          return summary.merge("retention_ms" => ms((Util.monotonic - started) * 1000))
        end
        tally ||= Summary.of_file(dump["path"], top: Summary::STORED_SITES, strings: false, retention: false)
        tally.merge("retention" => "not computed at capture time: #{why}; heapcapture report KEY computes it from the dump")
      rescue StandardError => e # never raised into the app: the tally stands without it
        Log.warn("the heap dump's retention analysis failed: #{Util.unprefixed(e.message)}")
        tally || summary_of_tempfile(dump["path"])
      end

      def summary_of_tempfile(path)
        # as the fork child's: no strings
        Summary.of_file(path, top: Summary::STORED_SITES, strings: false, retention: false)
      rescue StandardError => e # on its own thread: never raised into the app
        Log.warn("the heap dump has no summary: #{Util.unprefixed(e.message)}")
        nil
      end
    end
  end
end
