# frozen_string_literal: true

module HeapCapture
  class CLI
    # What every command shares: where it writes, and its --help.
    class BaseCommand
      def initialize(out:, err:)
        @out = out
        @err = err
      end

      private

      # Parses argv with the command's parser plus -h/--help; returns the remaining arguments, or
      # nil when help was asked for (and printed): the command then exits 0.
      def parse(parser, argv)
        parser.on("-h", "--help", "show this help") do
          @out.puts parser
          throw :help_shown
        end
        catch(:help_shown) { return parser.parse(argv) }
        nil
      end
    end
  end
end
