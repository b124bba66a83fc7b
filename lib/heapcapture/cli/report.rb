# frozen_string_literal: true

require "tmpdir"
require_relative "../flame_tree"
require_relative "../report_page"

module HeapCapture
  class CLI
    # heapcapture report KEY|latest|FILE [--json] [--top N] [--prefix P] [--stored] [--suspect-share X]
    #   [--folded FILE] [--html FILE]
    class DumpReport < BaseCommand
      def run(argv)
        options = { json: false, top: Summary::TOP, prefix: "", stored: false, share: HeapCapture.config.suspect_share }
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture report KEY|latest|FILE [options]\n\n" \
                     "What holds the memory in a heap dump: what the roots reach (retained) and what only\n" \
                     "awaits GC (garbage), by type, class and allocation site; the largest retainers (the\n" \
                     "memory each object alone keeps alive: its dominator subtree); leak suspects (a\n" \
                     "retainer, or a class or site whose instances together, holding at least\n" \
                     "--suspect-share of the retained heap), each with its shortest path from a root; the\n" \
                     "objects holding the most references and the top duplicate strings. FILE is any\n" \
                     "ObjectSpace.dump_all output on this machine, gzip or plain, or either age-encrypted\n" \
                     "(read with HEAPCAPTURE_IDENTITY, an age identity file). KEY and latest are\n" \
                     "downloaded (as heapcapture fetch does) into a temporary folder first; --stored reads\n" \
                     "the summary the capture stored beside the dump instead (KEY.summary.json: its\n" \
                     "retention analysis when the capture could afford one, no duplicate strings).\n\n"
          output_options(o, options)
          o.on("--prefix P", "with latest: the newest dump whose key begins with P") { |v| options[:prefix] = v }
          o.on("--stored", "with KEY or latest: read the stored summary, not the dump") { options[:stored] = true }
          o.on("--dump", "with KEY or latest: read the dump (the default; kept for older scripts)") { options[:stored] = false }
          share_option(o, options)
          picture_options(o, options)
        end
        args = parse(parser, argv) or return EXIT_OK
        check_arguments(args, options)
        error_page = ->(why) { write_page(nil, args.first, options[:html], error: why) }
        summary, name = page_on_error(options[:html], error_page) { summarize(args.first, options) }
        write_folded(summary, options[:folded]) if options[:folded]
        write_page(summary, name, options[:html]) if options[:html]
        options[:json] ? @out.puts(JSON.generate(summary)) : print_report(summary, name)
        EXIT_OK
      end

      private

      def check_arguments(args, options)
        raise OptionParser::MissingArgument, "KEY, latest or FILE" if args.empty?
        raise OptionParser::NeedlessArgument, args.drop(1).join(" ") if args.size > 1

        %i[folded html].each do |o|
          raise OptionParser::InvalidArgument, "--#{o} with --stored (made from the dump)" if options[o] && options[:stored]
        end
      end

      def picture_options(parser, options)
        parser.on("--folded FILE", "also write the dominator tree as folded stacks (frame;frame bytes lines, " \
                                   "for flamegraph.pl, inferno or speedscope) to FILE") { |v| options[:folded] = v }
        parser.on("--html FILE", "also write the report as one self-contained HTML page (the dominator tree " \
                                 "as a zoomable icicle, the suspects and their paths, sortable tables) to FILE") do |v|
          options[:html] = v
        end
      end

      # What the block makes (a summary, a diff); when it fails and a page was asked for (html), the
      # page says why too: error_page gets the message.
      def page_on_error(html, error_page)
        yield
      rescue Error => e
        error_page.call(Util.unprefixed(e.message)) if html
        raise
      end

      def write_page(summary, name, path, error: nil)
        write_text(path, ReportPage.html(summary, name, error: error), "the report page")
      end

      # text into path; Error naming what it was when the file cannot be written.
      def write_text(path, text, what)
        File.write(path, text)
      rescue SystemCallError => e
        raise Error, "writing #{what} to #{path}: #{e.message}"
      end

      def share_option(parser, options)
        parser.on("--suspect-share X", Float, "a suspect holds at least this share of the retained heap " \
                                              "(default HEAPCAPTURE_SUSPECT_SHARE, else #{Summary::SUSPECT_SHARE})") do |v|
          raise OptionParser::InvalidArgument, "#{v} (it must be above 0 and at most 1)" unless v.positive? && v <= 1

          options[:share] = v
        end
      end

      # --json and --top N, into options (report's and diff's; shown: what --top cuts).
      def output_options(parser, options, shown = "sites")
        parser.on("--json", "print the result as one JSON object") { options[:json] = true }
        parser.on("--top N", Integer, "#{shown} to show (default #{Summary::TOP})") do |v|
          raise OptionParser::InvalidArgument, "--top #{v} (it must be 1 or more)" unless v.positive?

          options[:top] = v
        end
      end

      def summarize(name, options)
        if options[:stored] && !File.file?(name)
          store = configured_store
          store, key = name == "latest" ? [store, store.latest(options[:prefix]).key] : store.locate(name)
          Dir.mktmpdir("heapcapture-report-", HeapCapture.config.tmpdir) do |dir|
            stored = stored_summary(store, key, dir)
            return [Summary.top(stored, options[:top]), "#{store.url(key)} (its stored summary)"] if stored
          end
        end
        tree = options[:folded] || options[:html] ? Summary::TREE_SHARE : nil
        with_local_dump(name, options[:prefix]) do |path, label, identity|
          [Summary.of_file(path, top: options[:top], share: options[:share], identity: identity, tree: tree), label]
        end
      end

      # The tree's folded stacks into path; Error saying why when the dump had no retention analysis.
      def write_folded(summary, path)
        tree = summary["tree"] or
          raise Error, "no dominator tree to fold: the retention analysis was #{summary['retention']}"
        write_text(path, FlameTree.folded(tree).map { |line| "#{line}\n" }.join, "the folded stacks")
      end

      # The summary a capture stored beside the dump (KEY.summary.json, .age after it when
      # encrypted: read with HEAPCAPTURE_IDENTITY), or nil when there is none: then the dump itself
      # is read.
      def stored_summary(store, key, dir)
        summary_key = Summary.key_for(key)
        return nil unless store.entries(summary_key).any? { |e| e.key == summary_key }

        path = File.join(dir, File.basename(summary_key))
        store.download(summary_key, path)
        read_summary(path, store.url(summary_key))
      rescue JSON::ParserError => e
        @err.puts Util.prefixed("#{store.url(summary_key)} is not JSON (#{e.message[0, 80]}); reading the dump instead")
        nil
      end

      # The summary JSON in the file at path (label: how to call it), decrypted first when it is an
      # age file.
      def read_summary(path, label)
        text = File.binread(path)
        text = decrypt(text, Age.identity!(label), label) if Age.encrypted?(path)
        JSON.parse(text.force_encoding(Encoding::UTF_8))
      end

      def decrypt(text, identity, label)
        Age.decrypt(text, identity)
      rescue Error => e
        raise Error, "#{label}: #{Util.unprefixed(e.message)}"
      end

      def print_report(summary, name)
        @out.puts "#{name}: #{count(summary['objects'])} objects, #{Size.human(summary['memsize'])} memsize " \
                  "(#{Size.human(summary['raw_bytes'])} of ndjson, #{count(summary['lines'])} lines)"
        if summary["invalid_lines"].positive?
          @out.puts "  #{count(summary['invalid_lines'])} line(s) are not JSON and were left out " \
                    "(Ruby 3.1 writes such lines for methods whose name is not ASCII, ruby/ruby#6161)"
        end
        Retention.new(@out).totals(summary)
        table("by type", summary["types"].sort_by { |type, t| [-t.fetch("retained_memsize", t["memsize"]), type] }, "type")
        generations = summary["generations"].sort_by { |gen, _| Integer(gen) }
        table("by generation (objects that carry one)", generations, "generation") unless generations.empty?
        if summary["retained"]
          Retention.new(@out).print(summary)
        else
          sites("top sites by memsize (garbage included: no retention analysis)", summary["sites"], summary["site_count"])
        end
        sites("top sites by object count (garbage included)", summary["sites_by_count"], summary["site_count"])
        references(summary)
        duplicate_strings(summary["duplicate_strings"])
      end

      # Top sites by references held (heapy's "High Ref Counts") and the objects holding the most;
      # a summary stored by an older heapcapture has neither.
      def references(summary)
        return @out.puts("\nreferences: not in this summary (stored by an older heapcapture; drop --stored)") \
          unless summary["most_references"]

        by_site = summary["sites_by_references"]
        unless by_site.empty?
          @out.puts "\ntop sites by references held (of their objects, in all):"
          @out.puts format("  %12s %12s  %s", "references", "objects", "file:line")
          words = Retention.new(@out)
          by_site.each do |s|
            @out.puts format("  %12s %12s  %s:%d%s", count(s["references"], s), count(s["objects"], s), s["file"], s["line"],
                             words.sampled(s))
          end
          words.estimates(by_site)
        end
        @out.puts "\nobjects holding the most references:"
        return @out.puts("  (none: no object holds a reference)") if summary["most_references"].empty?

        @out.puts format("  %12s %14s  %s", "references", "memsize", "object")
        summary["most_references"].each do |h|
          @out.puts format("  %12s %14s  %s", count(h["references"]), Size.human(h["memsize"]), holder(h))
        end
      end

      def holder(held) = Retention.object(held)

      def duplicate_strings(dups)
        return @out.puts("\nduplicate strings: not in a stored summary (tallied only from the dump: drop --stored)") unless dups

        @out.puts "\ntop duplicate strings (strings of the same value; values dump_all writes: ASCII ones):"
        return @out.puts("  (none: no two strings hold the same value)") if dups.empty?

        @out.puts format("  %10s %14s  %s", "copies", "memsize", "value")
        dups.each { |d| @out.puts format("  %10s %14s  %s", count(d["count"]), Size.human(d["memsize"]), string_line(d)) }
      end

      # "\"SELECT 1\" (8 bytes) at app/x.rb:3 and other sites", the value cut short with "..."
      def string_line(dup)
        value = dup["truncated"] ? "#{dup['value'].inspect}..." : dup["value"].inspect
        "#{value} (#{dup['bytesize']} byte#{dup['bytesize'] == 1 ? '' : 's'})#{string_sites(dup)}"
      end

      def string_sites(dup)
        others = dup["more_sites"] ? " and other sites" : ""
        return " at #{dup['file']}:#{dup['line']}#{others}" if dup["file"]

        dup["more_sites"] ? " at more than one site" : ""
      end

      def table(title, rows, label)
        retained = rows.any? { |_, t| t.key?("retained_memsize") }
        @out.puts "\n#{title}:"
        @out.puts format("  %-24s %12s %14s%s", label, "objects", "memsize", retained ? format(" %14s", "retained") : "")
        rows.each do |key, t|
          held = retained ? format(" %14s", Size.human(t.fetch("retained_memsize", 0))) : ""
          @out.puts format("  %-24s %12s %14s%s", key, count(t["objects"]), Size.human(t["memsize"]), held)
        end
      end

      def sites(title, rows, total)
        @out.puts "\n#{title} (#{count(total)} sites in all; a site is known for objects allocated with tracing on):"
        return @out.puts("  (none: no object carries its allocation site)") if rows.empty?

        @out.puts format("  %14s %12s  %s", "memsize", "objects", "file:line")
        words = Retention.new(@out)
        rows.each do |s|
          @out.puts format("  %14s %12s  %s:%d%s", ResultText.approx(s, Size.human(s["memsize"]), s["memsize"]),
                           count(s["objects"], s), s["file"], s["line"], words.sampled(s))
        end
        words.estimates(rows)
      end

      # number with its thousands marked, "~" before it when figures (a site) are estimates
      def count(number, figures = {}) = ResultText.approx(figures, Size.count(number), number)
    end

    register "report", DumpReport, "what holds the memory in a heap dump: retained and garbage, retainers, suspects"
  end
end
