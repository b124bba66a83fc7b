# frozen_string_literal: true

require "json"

module HeapCapture
  # A heap dump's summary, tallied in C as the dump is read (ext/heapcapture/dump_summary.c): object
  # count and memsize in all, by type, by GC generation and by allocation site, top sites by memsize
  # and by count, and the lines that are not JSON (left out). The same numbers a full parse of the
  # dump gives (test/report_test.rb checks that).
  module Summary
    TOP = 10

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
  end
end
