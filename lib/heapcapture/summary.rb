# frozen_string_literal: true

require "json"

module HeapCapture
  # A heap dump's summary, tallied in C as the dump is read (ext/heapcapture/dump_summary.c): object
  # count and memsize in all, by type, by GC generation and by allocation site, top sites by memsize
  # and by count, and the lines that are not JSON (left out). The same numbers a full parse of the
  # dump gives (test/report_test.rb checks that). A capture makes one as its dump streams (in the
  # dump child, on a thread of its own: summary_feed.c), stores it beside the dump as
  # KEY.summary.json and puts the top of it in the result.
  module Summary
    TOP = 10
    STORED_SITES = 100 # HC_DUMP_SUMMARY_SITES (dump_stream.h): the top sites a capture's summary keeps
    SUFFIX = ".summary.json"
    RESULT_KEYS = %w[objects memsize site_count types].freeze

    module_function

    # The summary of a dump file (gzip or plain, any ObjectSpace.dump_all output) as a Hash, or
    # DumpError for a file that is not one.
    def of_file(path, top: TOP)
      json, bytes, = Dump.summarize(path.to_s, top)
      raise DumpError, "#{path} is empty: there is no heap dump in it" if bytes.zero?

      summary = JSON.parse(json)
      if summary["objects"].zero?
        raise DumpError, "#{path} is not a heap dump: none of its #{summary['lines']} line(s) is a record " \
                         "ObjectSpace.dump_all writes"
      end
      summary.merge("raw_bytes" => bytes)
    end

    # "<dump key without .ndjson(.gz)>.summary.json"
    def key_for(dump_key) = dump_key.sub(Destination::DUMP, "") + SUFFIX

    # What a result carries: totals, types, the top sites by memsize (Wire.reply_json drops the
    # last ones when the reply would not fit in a notification).
    def for_result(summary)
      summary.slice(*RESULT_KEYS).merge("sites" => summary["sites"].first(TOP))
    end

    # The summary cut to the top sites asked for (a stored one keeps STORED_SITES).
    def top(summary, count)
      summary.merge("sites" => summary["sites"].first(count), "sites_by_count" => summary["sites_by_count"].first(count))
    end

    # Stores summary (a Hash) as key_for(dump_key) at destination, through a 0600 file in tmpdir
    # that is removed after. => the stored location.
    def store(summary, destination, dump_key, tmpdir)
      path = File.join(tmpdir, "heapcapture-#{Process.pid}-#{format('%016x', rand(1 << 64))}#{SUFFIX}")
      File.open(path, File::WRONLY | File::CREAT | File::EXCL, 0o600) { |f| f.write(JSON.generate(summary)) }
      destination.store(path, key_for(dump_key))["location"]
    ensure
      File.unlink(path) if path && File.exist?(path)
    end
  end
end
