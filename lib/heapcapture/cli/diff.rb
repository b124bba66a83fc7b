# frozen_string_literal: true

require "tmpdir"
require_relative "report" # DumpDiff is a DumpReport

module HeapCapture
  class CLI
    # heapcapture diff OLD NEW [LATER] [--json] [--top N] [--html FILE]
    class DumpDiff < DumpReport
      def run(argv)
        options = { json: false, top: Summary::TOP }
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture diff OLD NEW [LATER] [options]\n\n" \
                     "What grew between heap dumps, and what holds it. The objects made between OLD and\n" \
                     "NEW: those in NEW whose address OLD does not have; with LATER (the three-dump way to\n" \
                     "find a leak), those of them still in LATER, as LATER has them. In the dump analysed\n" \
                     "(LATER, else NEW): how much of that growth a root reaches (retained) and how much\n" \
                     "only awaits GC; the sites and classes of the growth by retained memsize; what is\n" \
                     "holding the growth (the deepest object on the dominator chain holding at least 80%\n" \
                     "of the most any object holds: typically an old object, a cache, holding the new\n" \
                     "ones), with its shortest path from a root; the objects holding the most of it.\n" \
                     "Each dump is a FILE on this machine (gzip or plain, or either age-encrypted: read\n" \
                     "with HEAPCAPTURE_IDENTITY) or a KEY at the destination, downloaded first. Objects\n" \
                     "are matched by address: it says when GC.compact ran between the dumps, or the dumps\n" \
                     "are of different processes (from the summaries stored beside them).\n\n"
          output_options(o, options, "sites, classes and holders")
          o.on("--html FILE", "also write the diff as one self-contained HTML page (what grew by type, site and " \
                              "class, what holds it and its path from a root, sortable tables) to FILE") do |v|
            options[:html] = v
          end
        end
        args = parse(parser, argv) or return EXIT_OK
        raise OptionParser::MissingArgument, "OLD and NEW" if args.size < 2
        raise OptionParser::NeedlessArgument, args.drop(3).join(" ") if args.size > 3

        error_page = ->(why) { write_diff_page(nil, args, options[:html], error: why) }
        diff = page_on_error(options[:html], error_page) { diff_of(args, options) }
        write_diff_page(diff, args, options[:html]) if options[:html]
        options[:json] ? @out.puts(JSON.generate(diff)) : print_diff(diff, args, diff["caveat"])
        EXIT_OK
      end

      private

      # The diff of the dumps named, with its "caveat" (nil, or why addresses may not match).
      def diff_of(args, options)
        Dir.mktmpdir("heapcapture-diff-", HeapCapture.config.tmpdir) do |dir|
          local = args.map { |name| local_dump(name, dir) }
          diff = as_downloaded(@downloaded.to_h) do
            Summary.diff_of_files(*local.map(&:first), top: options[:top], identity: @identity)
          end
          diff.merge("caveat" => Summary.address_caveat(local.map(&:last)))
        end
      end

      def write_diff_page(diff, names, path, error: nil)
        write_text(path, ReportPage.diff_html(diff, names, error: error), "the diff page")
      end

      # [a path on this machine, the summary stored beside the dump or nil]; @identity: what reads
      # the dumps when one is age-encrypted (HEAPCAPTURE_IDENTITY).
      def local_dump(name, dir)
        if File.file?(name)
          @identity ||= identity_for(name, name)
          return [name, summary_beside(name)]
        end

        @store ||= configured_store
        store, key = @store.locate(name)
        path = File.join(dir, File.basename(key))
        raise Error, "#{name} is given twice" if File.exist?(path)

        @identity ||= Age.identity!(store.url(key)) if key.end_with?(Age::SUFFIX)
        store.download(key, path)
        (@downloaded ||= []) << [path, store.url(key)]
        @identity ||= identity_for(path, store.url(key))
        [path, stored_summary(store, key, dir)]
      end

      def summary_beside(path)
        beside = File.join(File.dirname(path), Summary.key_for(File.basename(path)))
        File.file?(beside) ? read_summary(beside, beside) : nil
      rescue JSON::ParserError, Error
        nil
      end

      def print_diff(diff, names, caveat)
        later = names[2] ? " and still in #{names[2]}" : ""
        @out.puts "in #{names[1]}, not in #{names[0]}#{later}: #{count(diff['objects'])} objects, " \
                  "#{Size.human(diff['memsize'])} memsize"
        @out.puts "  (as #{names[2]} has them: whether they are still held is judged there)" if names[2]
        @out.puts "  note: #{caveat}" if caveat
        growth_totals(diff)
        return if diff["objects"].zero?

        table("by type", diff["types"].sort_by { |type, t| [-t.fetch("retained_memsize", t["memsize"]), type] }, "type")
        if diff["growth"]
          print_growth(diff)
        else
          sites("top sites by memsize (garbage included: no retention analysis)", diff["sites"], diff["site_count"])
        end
        sites("top sites by object count (garbage included)", diff["sites_by_count"], diff["site_count"])
        references(diff)
      end

      # Under the first line: how much of the growth a root reaches, and how much only awaits GC.
      def growth_totals(diff)
        return @out.puts("  retention: #{diff['retention']}") unless diff["growth"]

        held, garbage, own = diff["growth"].values_at("retained", "garbage", "own")
        @out.puts "  retained (reachable from a root): #{pair(held)}"
        @out.puts "  awaiting GC (reachable from no root: freed by the next GC, not growth that stays): #{pair(garbage)}"
        @out.puts "  heapcapture's own (kept out of the lists below): #{pair(own)}" if own["objects"].positive?
      end

      def print_growth(diff)
        retention = Retention.new(@out)
        retention.sites(diff["sites"], diff["site_count"], title: "top sites of the growth by retained memsize")
        retention.classes(diff["classes"], title: "top classes of the growth by retained memsize")
        growth_holder(diff["holder"])
        growth_holders(diff["holders"])
      end

      def growth_holder(held)
        @out.puts "\nwhat is holding the growth (the deepest object holding at least 80% of the most any object holds):"
        return @out.puts("  (nothing: no root reaches a new object)") unless held

        @out.puts "  #{Retention.object(held)} holds #{Size.human(held['growth_memsize'])} of the growth " \
                  "(#{share(held)} of what is retained) in #{count(held['growth_objects'])} new objects"
        @out.puts "    path from a root:"
        Retention.path_lines(held["path"], held["path_length"]).each { |line| @out.puts "      #{line}" }
      end

      def growth_holders(rows)
        @out.puts "\nholders of the growth (the new objects' memsize each keeps alive; the deepest of each chain):"
        return @out.puts("  (none)") if rows.empty?

        @out.puts format("  %14s %12s %7s  %s", "growth", "new objects", "share", "object")
        rows.each do |h|
          @out.puts format("  %14s %12s %7s  %s", Size.human(h["growth_memsize"]), count(h["growth_objects"]), share(h),
                           Retention.object(h))
        end
      end

      def share(holder) = format("%.1f%%", holder["growth_share"] * 100)
      def pair(tally) = "#{count(tally['objects'])} objects, #{Size.human(tally['memsize'])} memsize"
    end

    register "diff", DumpDiff, "what grew between heap dumps, and what holds it: retained and garbage, sites, holders"
  end
end
