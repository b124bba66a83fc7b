# frozen_string_literal: true

require "tmpdir"
require_relative "report" # DumpDiff is a DumpReport

module HeapCapture
  class CLI
    # heapcapture diff OLD NEW [LATER] [--json] [--top N]
    class DumpDiff < DumpReport
      def run(argv)
        options = { json: false, top: Summary::TOP }
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture diff OLD NEW [LATER] [options]\n\n" \
                     "The objects in NEW that OLD does not have (and, with LATER, that are still in LATER:\n" \
                     "the three-dump way to find a leak), by type and by allocation site. Each is a FILE\n" \
                     "on this machine (gzip or plain) or a KEY at the destination, downloaded first.\n" \
                     "Objects are matched by address: it says when GC.compact ran between the dumps,\n" \
                     "or the dumps are of different processes (from the summaries stored beside them).\n\n"
          output_options(o, options)
        end
        args = parse(parser, argv) or return EXIT_OK
        raise OptionParser::MissingArgument, "OLD and NEW" if args.size < 2
        raise OptionParser::NeedlessArgument, args.drop(3).join(" ") if args.size > 3

        Dir.mktmpdir("heapcapture-diff-", HeapCapture.config.tmpdir) do |dir|
          local = args.map { |name| local_dump(name, dir) }
          diff = Summary.diff_of_files(*local.map(&:first), top: options[:top])
          caveat = Summary.address_caveat(local.map(&:last))
          options[:json] ? @out.puts(JSON.generate(diff.merge("caveat" => caveat))) : print_diff(diff, args, caveat)
        end
        EXIT_OK
      end

      private

      # [a path on this machine, the summary stored beside the dump or nil]
      def local_dump(name, dir)
        return [name, summary_beside(name)] if File.file?(name)

        @store ||= configured_store
        store, key = @store.locate(name)
        path = File.join(dir, File.basename(key))
        raise Error, "#{name} is given twice" if File.exist?(path)

        store.download(key, path)
        [path, stored_summary(store, key, dir)]
      end

      def summary_beside(path)
        beside = File.join(File.dirname(path), Summary.key_for(File.basename(path)))
        File.file?(beside) ? JSON.parse(File.read(beside, encoding: "UTF-8")) : nil
      rescue JSON::ParserError
        nil
      end

      def print_diff(diff, names, caveat)
        later = names[2] ? " and still in #{names[2]}" : ""
        @out.puts "in #{names[1]}, not in #{names[0]}#{later}: #{count(diff['objects'])} objects, " \
                  "#{Size.human(diff['memsize'])} memsize"
        @out.puts "  note: #{caveat}" if caveat
        return if diff["objects"].zero?

        table("by type", diff["types"].sort_by { |type, t| [-t["memsize"], type] }, "type")
        sites("top sites by memsize", diff["sites"], diff["site_count"])
        sites("top sites by object count", diff["sites_by_count"], diff["site_count"])
        references(diff)
      end
    end

    register "diff", DumpDiff, "the objects a heap dump has that an earlier one does not: by type and allocation site"
  end
end
