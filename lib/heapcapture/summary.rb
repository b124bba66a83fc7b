# frozen_string_literal: true

require "json"

module HeapCapture
  # A heap dump's summary, tallied in C as the dump is read (ext/heapcapture/heap_summary.c): object
  # count and memsize in all, by type, by GC generation and by allocation site, top sites by memsize,
  # by count and by references held, the objects holding the most references, and the lines that
  # are not JSON (left out); read from a dump file, also the top duplicate strings (heap_strings.c:
  # a capture's stored summary has none). The same numbers a full parse of the dump gives
  # (test/report/report_test.rb checks that). Every capture makes one (read back from the tempfile
  # once the dump child has exited or the inline dump is done, while it is stored; an encrypted
  # dump's is made in the stream, as this process cannot read the dump back), stores it beside the
  # dump as KEY.summary.json and puts the top of it in the result.
  module Summary
    TOP = 10
    STORED_SITES = 100 # HC_DUMP_SUMMARY_SITES (dump_stream.h): the top sites a capture's summary keeps
    LISTS = %w[sites sites_by_count sites_by_references most_references duplicate_strings classes retainers
               retained_by_class retained_by_site].freeze
    SUFFIX = ".summary.json"
    RESULT_KEYS = %w[objects memsize site_count types retention retention_ms retention_peak_bytes retained garbage
                     own].freeze

    module_function

    # The summary of a dump file (gzip or plain, any ObjectSpace.dump_all output) as a Hash, or
    # DumpError for a file that is not one (empty, no dump: checked in C, rb_heap.c). With
    # strings, the top duplicate strings too (a tally of 21–43 bytes a distinct string: never in a
    # capture's own process, where memory may be what is short). With retention, what holds the
    # memory (heap_graph.h: ~50 bytes an object and 8 a reference while it runs): retained and
    # garbage, sites and classes by retained memsize, retainers, suspects at share; "retention"
    # says "computed", or why not. With tree (a share, TREE_SHARE say), "tree": the dominator tree as
    # a flame graph's frames (heap_flame.h), those retaining less than that share joined in "(other)".
    # An age-encrypted dump is decrypted as it is read, with identity (an identity file's text, Age.identity!).
    def of_file(path, top: TOP, strings: true, retention: true, share: SUSPECT_SHARE, identity: nil, tree: nil)
      json, bytes, _, analysis = Dump.summarize(path.to_s, top, strings, retention ? Float(share) : nil, identity,
                                                retention && tree ? Float(tree) : nil)
      with_retention(JSON.parse(json).merge("raw_bytes" => bytes), analysis)
    end

    # The retention analysis (or a diff's growth) merged into the summary: types gain retained_*,
    # "sites" becomes the sites by retained memsize (the tally's list by memsize counts garbage as held).
    def with_retention(summary, analysis)
      return summary if analysis.nil?
      return summary.merge("retention" => "not computed: #{analysis.first}") if analysis.is_a?(Array)

      found = JSON.parse(analysis)
      types = summary["types"].to_h { |type, t| [type, t.merge(found["types"].fetch(type, RETAINED_NONE))] }
      summary.merge(found.except("types")).merge("types" => types)
    end
    RETAINED_NONE = { "retained_objects" => 0, "retained_memsize" => 0 }.freeze
    SUSPECT_SHARE = 0.1
    TREE_SHARE = 0.001 # a frame of the dominator tree drawn on its own retains at least this share

    # The shortest paths from a root to the object at address (an Integer), or to up to all objects
    # of class_name or of site ("file:line"), those retaining most first: [{"target", "path_length",
    # "path" => [hop, ...]}], root first. DumpError saying why not.
    def paths_of_file(path, address: nil, class_name: nil, site: nil, all: 1, identity: nil)
      file, line = site && site_parts(site)
      JSON.parse(Dump.paths(path.to_s, address, class_name, file, line, all, identity))
    end

    # "app/models/user.rb:12" => ["app/models/user.rb", 12]; ArgumentError when it is not FILE:LINE.
    def site_parts(site)
      file, line = site.match(/\A(.+):(\d+)\z/)&.captures
      raise ArgumentError, "#{site.inspect} is not FILE:LINE (a site as report prints it)" unless file

      [JSON.generate(file)[1..-2], Integer(line, 10)] # the file as the dump writes it: JSON-escaped
    end

    # What grew between dumps: the objects made between old and new, summarized as of_file does,
    # and what holds them, from the graph of the dump analysed. With two dumps that is new, and the
    # objects are new's whose address old lacks; with later (the 3-dump technique) it is later,
    # where "still alive" is judged: the objects of later whose address new has and old lacks, as
    # later has them ("lines", "invalid_lines", "roots" and "raw_bytes" are the dump analysed's).
    # Merged in (heap_retention.h, hc_retention_growth_json): "retention" ("computed", or why not),
    # "growth" ({"retained", "garbage", "own"}: the new objects a root reaches, those awaiting GC),
    # types with retained_*, "sites" and "classes" by retained memsize (as report's), "holders"
    # (objects by the new memsize in their dominator subtree, each with "growth_memsize",
    # "growth_objects", "growth_share" and its "path") and "holder" (what holds the growth: the
    # deepest object holding at least 80% of the most any object holds; nil when none holds any).
    # DumpError for a file that is not a dump.
    def diff_of_files(old, new, later = nil, top: TOP, identity: nil)
      json, bytes, _, growth = Dump.diff(old.to_s, new.to_s, later&.to_s, top, identity)
      with_retention(JSON.parse(json).merge("raw_bytes" => bytes), growth)
    end

    # Why the addresses of these dumps may not say which objects are new, from the summaries
    # stored beside them (nil for a dump without one), or nil when nothing says so.
    def address_caveat(stored)
      if stored.any? { |s| !s.is_a?(Hash) || !s.key?("gc_compact_count") }
        return "whether GC.compact ran between these dumps is not known (no summary stored beside each): " \
               "objects it moved would count as new"
      end
      pids = stored.map { |s| s["pid"] }.uniq
      return "these dumps are of different processes (pid #{pids.join(', pid ')}): their addresses do not compare" \
        if pids.size > 1

      counts = stored.map { |s| s["gc_compact_count"] }
      auto = stored.any? { |s| s["gc_auto_compact"] }
      return nil if counts.uniq.size == 1 && !auto

      "GC.compact ran between these dumps (compactions #{counts.join(' -> ')}#{auto ? ', GC.auto_compact on' : ''}): " \
        "objects it moved have new addresses and count as new"
    end

    # What a capture adds to the summary it stores: whose dump, and the GC compactions so far (a
    # diff's addresses are reliable only with none between two dumps).
    def capture_facts
      { "pid" => Process.pid, "dyno" => Dyno.label, "gc_compact_count" => GC.stat(:compact_count),
        "gc_auto_compact" => GC.respond_to?(:auto_compact) ? GC.auto_compact : false }
    end

    # "<dump key without .ndjson(.gz)>.summary.json", ".age" after it for an encrypted dump's
    def key_for(dump_key, suffix = SUFFIX)
      dump_key.sub(Destination::DUMP, "") + suffix + (dump_key.end_with?(Age::SUFFIX) ? Age::SUFFIX : "")
    end

    # What a result carries: totals, types, the top sites by memsize (Wire.reply_json drops the
    # last ones when the reply would not fit in a notification).
    def for_result(summary)
      result = summary.slice(*RESULT_KEYS).merge("sites" => summary["sites"].first(TOP))
      result["suspects"] = summary["suspects"].first(SUSPECTS_IN_RESULT) if summary["suspects"]
      result
    end
    SUSPECTS_IN_RESULT = 3 # with their paths: what fits a notification beside the sites (Wire.reply_json)

    # The summary cut to the top entries asked for (a stored one keeps STORED_SITES).
    def top(summary, count)
      summary.merge(summary.slice(*LISTS).transform_values { |list| list.first(count) })
    end

    # Stores summary (a Hash) as key_for(dump_key) at destination, through a 0600 file in tmpdir
    # that is removed after; with encrypt_to (recipients), encrypted to them before it is written.
    # => the stored location.
    def store(summary, destination, dump_key, tmpdir, encrypt_to: nil)
      Destination.store_text(JSON.generate(summary), destination, key_for(dump_key), tmpdir, SUFFIX, encrypt_to: encrypt_to)
    end
  end
end
