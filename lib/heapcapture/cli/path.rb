# frozen_string_literal: true

module HeapCapture
  class CLI
    # heapcapture path KEY|latest|FILE (ADDRESS | --class NAME | --site FILE:LINE) [--all N] [--json]
    class DumpPath < BaseCommand
      def run(argv)
        options = { json: false, all: nil, prefix: "" }
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture path KEY|latest|FILE (ADDRESS | --class NAME | --site FILE:LINE) [options]\n\n" \
                     "Why an object is alive: the shortest path from a root to it (as sheap's find_path),\n" \
                     "root first, one hop a line: address, type, class (or imemo type), allocation site,\n" \
                     "memsize and what the object alone retains. --class and --site explain the objects\n" \
                     "of a class or allocated at a site, those retaining most first. FILE is any\n" \
                     "ObjectSpace.dump_all output on this machine, gzip or plain, or either age-encrypted\n" \
                     "(read with HEAPCAPTURE_IDENTITY); KEY and latest are downloaded first.\n\n"
          o.on("--class NAME", "objects of this class (as report prints it)") { |v| options[:class_name] = v }
          o.on("--site FILE:LINE", "objects allocated at this site") { |v| options[:site] = v }
          o.on("--all N", Integer, "with --class or --site: up to N objects (default 1)") do |v|
            raise OptionParser::InvalidArgument, "#{v} (it must be 1 or more)" unless v.positive?

            options[:all] = v
          end
          o.on("--prefix P", "with latest: the newest dump whose key begins with P") { |v| options[:prefix] = v }
          o.on("--json", "print the paths as JSON: [{\"target\", \"path_length\", \"path\": [hop, ...]}]") do
            options[:json] = true
          end
        end
        args = parse(parser, argv) or return EXIT_OK
        name, address = target(args, options)
        paths = with_local_dump(name, options[:prefix]) do |path, _, identity|
          Summary.paths_of_file(path, address: address, class_name: options[:class_name], site: options[:site],
                                      all: options[:all] || 1, identity: identity)
        end
        options[:json] ? @out.puts(JSON.generate(paths)) : print_paths(paths)
        EXIT_OK
      end

      private

      # [dump, address or nil] from the arguments, checked: one of ADDRESS, --class, --site.
      def target(args, options)
        raise OptionParser::MissingArgument, "KEY, latest or FILE" if args.empty?
        raise OptionParser::NeedlessArgument, args.drop(2).join(" ") if args.size > 2

        asked = [args[1], options[:class_name], options[:site]].compact.size
        raise OptionParser::MissingArgument, "ADDRESS, --class NAME or --site FILE:LINE" if asked.zero?
        raise OptionParser::AmbiguousOption, "one of ADDRESS, --class and --site" if asked > 1
        raise OptionParser::NeedlessArgument, "--all goes with --class or --site" if args[1] && options[:all]
        return [args[0], nil] unless args[1]

        hex = args[1][/\A0x(\h{1,16})\z/i, 1] or
          raise OptionParser::InvalidArgument, "#{args[1]} (an address is 0x and hex digits, as the dump writes it)"
        [args[0], Integer(hex, 16)]
      end

      def print_paths(paths)
        paths.each_with_index do |p, i|
          @out.puts if i.positive?
          length = p["path_length"]
          @out.puts "#{p['target']}: held through #{length - 1} object#{length == 2 ? '' : 's'} from a root " \
                    "(the last is the object)"
          Retention.path_lines(p["path"], length).each { |line| @out.puts "  #{line}" }
        end
      end
    end

    register "path", DumpPath, "why an object is alive: the shortest path from a root to it (a file, latest or a key)"
  end
end
