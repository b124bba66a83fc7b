# frozen_string_literal: true

module HeapCapture
  class CLI
    # heapcapture signal [PAYLOAD] [--process-type web] [--dynos 1] [--wait SECONDS] [--trace-for SECONDS]
    class Signal < BaseCommand
      def run(argv)
        options = { process_type: "web", dynos: 1, wait: nil, trace_for: nil }
        parser = OptionParser.new do |o|
          o.banner = "Usage: heapcapture signal [PAYLOAD] [options]\n\n" \
                     "Tells the selected dynos to capture a heap dump (NOTIFY heapcapture_<type>_<n>).\n" \
                     "PAYLOAD (default \"go\") reaches the capture as is: at most 7999 bytes of UTF-8.\n" \
                     "With HEAPCAPTURE_SIGNAL_KEY set, each notification is signed with it and each\n" \
                     "result's URL comes sealed to this command (doc/security.md).\n\n"
          o.on("--process-type TYPE", "process type to signal (default: web)") { |v| options[:process_type] = v }
          o.on("--dynos N", Integer, "signal TYPE.1 .. TYPE.N (default: 1)") { |v| options[:dynos] = v }
          o.on("--wait SECONDS", Float, "wait for the results; exit 1 unless every selected",
               "dyno sent one and every one is ok") { |v| options[:wait] = v }
          o.on("--trace-for SECONDS", Float, "turn on full allocation tracing in each selected dyno",
               "now, capture after SECONDS (at most 86400); give a --wait longer",
               "than that for the results") { |v| options[:trace_for] = v }
        end
        args = parse(parser, argv) or return EXIT_OK
        raise OptionParser::NeedlessArgument, args.drop(1).join(" ") if args.size > 1

        signaller = Signaller.new(args.first || "go", **options)
        signaller.call
        ResultText.print_signal(signaller, out: @out, err: @err) ? EXIT_OK : EXIT_FAILED
      end
    end

    register "signal", Signal, "tell the selected dynos to capture a heap dump"
  end
end
