# frozen_string_literal: true

require_relative "../report_page"

module HeapCapture
  class Capture
    # A capture's summary, in the app's process once the dump is written (and the fork child gone):
    # the retention analysis when the memory guard says it fits, else a tally read from the
    # tempfile (an encrypted dump's: made as it streamed), stored beside the dump and cut to what a
    # result carries. Included in Capture.
    module Summaries
      # Why an encrypted capture has no retention analysis: it would read the dump back, and this
      # process holds only the recipients' public keys (doc/security.md, "Encryption at rest").
      ENCRYPTED = "skipped: the dump is encrypted (encrypt_to) and this process holds no identity; " \
                  "heapcapture report KEY computes it from the dump with HEAPCAPTURE_IDENTITY"

      private

      # The summary made as an encrypted dump streamed, as a Hash; nil (and a warning) when none
      # was made (out of memory).
      def parse_summary(dump)
        return JSON.parse(dump["summary_json"]).merge("raw_bytes" => dump["raw_bytes"]) if dump["summary_json"]

        Log.warn("the heap dump has no summary: #{dump['summary_error'] || 'none was made'}")
        nil
      end

      # The summary: stored beside the dump, its top in the result; with report_html, its page too
      # (the only use of the dominator tree's frames: not stored in the summary). When either
      # cannot be stored, the dump still is: a warning says why.
      def store_summary(summary, destination, key)
        return nil unless summary

        summary.merge!(@facts)
        summary["redacted"] = "strings" if redact?
        tree = summary.delete("tree")
        begin
          Summary.store(summary, destination, key, @config.tmpdir, encrypt_to: @config.encrypt_to)
        rescue HeapCapture::Error, SystemCallError, IOError => e
          Log.warn("the heap dump's summary was not stored: #{Util.unprefixed(e.message)}")
        end
        store_page(tree ? summary.merge("tree" => tree) : summary, destination, key) if @config.report_html
        Summary.for_result(summary)
      end

      def store_page(summary, destination, key)
        ReportPage.store(summary, destination, key, @config.tmpdir, encrypt_to: @config.encrypt_to)
      rescue HeapCapture::Error, SystemCallError, IOError => e
        Log.warn("the heap dump's report page was not stored: #{Util.unprefixed(e.message)}")
      end

      # The summary with the retention analysis (what is held, by whom, the suspects), made from the
      # finished tempfile by a process of its own (RetentionProcess: nothing of it is the app's
      # memory, GVL or GC) when the memory guard says the machine can take it; not in the fork child,
      # which must not live longer for it (every page the app writes meanwhile is copied). Otherwise,
      # or when it fails, the tally read here with "retention" saying why: `heapcapture report KEY`
      # computes it from the dump. An encrypted dump's tempfile holds ciphertext, which nothing
      # here can read: its tally (made as it streamed) stands alone.
      def with_retention(dump)
        return parse_summary(dump)&.merge("retention" => ENCRYPTED) if encrypt?

        fits, why = MemoryGuard.retention_fits(@config, MemoryGuard.retention_need(dump["raw_bytes"]))
        return without_retention(dump, why) unless fits

        started = Util.monotonic
        summary = RetentionProcess.summarize(dump["path"], top: Summary::STORED_SITES, share: @config.suspect_share,
                                                           tmpdir: @config.tmpdir, raw_bytes: dump["raw_bytes"],
                                                           tree: @config.report_html)
        summary.merge("retention_ms" => ms((Util.monotonic - started) * 1000))
      rescue StandardError => e # never raised into the app: the tally stands without it
        Log.warn("the heap dump's retention analysis failed: #{Util.unprefixed(e.message)}")
        without_retention(dump, Util.unprefixed(e.message))
      end

      def without_retention(dump, why)
        summary_of_tempfile(dump["path"])&.merge(
          "retention" => "not computed at capture time: #{why}; heapcapture report KEY computes it from the dump"
        )
      end

      def summary_of_tempfile(path)
        # as at capture time always: no strings (their tally is memory a capture must not take)
        Summary.of_file(path, top: Summary::STORED_SITES, strings: false, retention: false)
      rescue StandardError => e # on its own thread: never raised into the app
        Log.warn("the heap dump has no summary: #{Util.unprefixed(e.message)}")
        nil
      end
    end
  end
end
