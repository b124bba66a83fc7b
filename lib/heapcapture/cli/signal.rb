# frozen_string_literal: true

module HeapCapture
  class CLI
    # heapcapture signal [PAYLOAD] [--process-type web] [--dynos 1] [--wait SECONDS]
    class Signal < BaseCommand
      def run(argv)
        options = { process_type: "web", dynos: 1, wait: nil }
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture signal [PAYLOAD] [options]\n\n" \
                     "Tells the selected dynos to capture a heap dump (NOTIFY heapcapture_<type>_<n>).\n" \
                     "PAYLOAD (default \"go\") reaches the capture as is: at most 7999 bytes of UTF-8.\n\n"
          o.on("--process-type TYPE", "process type to signal (default: web)") { |v| options[:process_type] = v }
          o.on("--dynos N", Integer, "signal TYPE.1 .. TYPE.N (default: 1)") { |v| options[:dynos] = v }
          o.on("--wait SECONDS", Float, "wait for the results; exit 1 unless every one is ok") { |v| options[:wait] = v }
        end
        args = parse(parser, argv) or return EXIT_OK
        raise OptionParser::NeedlessArgument, args.drop(1).join(" ") if args.size > 1

        result = HeapCapture.signal(args.first || "go", **options)
        options[:wait] ? report(result, options[:wait]) : announce(result)
      end

      private

      def announce(channels)
        channels.each { |channel| @out.puts "signalled #{channel}" }
        EXIT_OK
      end

      def report(results, wait)
        results.each { |result| @out.puts Report.line(result) }
        @err.puts "heapcapture: no reply within #{wait} s (is a process armed? see HeapCapture.exclusive)" if results.empty?
        Report.all_ok?(results) ? EXIT_OK : EXIT_FAILED
      end
    end

    register "signal", Signal, "tell the selected dynos to capture a heap dump"
  end
end
