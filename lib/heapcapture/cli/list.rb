# frozen_string_literal: true

module HeapCapture
  class CLI
    # heapcapture list [--prefix P]
    class List < BaseCommand
      def run(argv)
        prefix = ""
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture list [options]\n\n" \
                     "Lists the heap dumps stored at the destination (HEAPCAPTURE_DESTINATION, else\n" \
                     "s3://$AWS_S3_BUCKET_NAME/), oldest first: time (UTC), size, key.\n\n"
          o.on("--prefix P", "only keys that begin with P (under the destination's prefix)") { |v| prefix = v }
        end
        args = parse(parser, argv) or return EXIT_OK
        raise OptionParser::NeedlessArgument, args.join(" ") unless args.empty?

        store = configured_store
        dumps = store.dumps(prefix)
        print_table(dumps)
        @out.puts footer(dumps, store.url(store.prefix + prefix))
        EXIT_OK
      end

      private

      def print_table(dumps)
        sizes = dumps.map { |d| Size.human(d.size) }
        human_width = sizes.map(&:size).max
        bytes_width = dumps.map { |d| d.size.to_s.size }.max
        dumps.zip(sizes).each do |dump, human|
          @out.puts "#{dump.time.utc.strftime('%Y-%m-%dT%H:%M:%SZ')}  #{human.rjust(human_width)}  " \
                    "#{dump.size.to_s.rjust(bytes_width)}  #{dump.key}"
        end
      end

      def footer(dumps, where)
        return "no dumps in #{where}" if dumps.empty?

        total = dumps.sum(&:size)
        "#{dumps.size} #{dumps.size == 1 ? 'dump' : 'dumps'} in #{where} (#{Size.human(total)} in all)"
      end
    end

    register "list", List, "list the stored heap dumps, oldest first"
  end
end
