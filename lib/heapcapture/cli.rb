# frozen_string_literal: true

require "optparse"
require "logger"
require_relative "../heapcapture"

module HeapCapture
  # The command line: `heapcapture COMMAND [options]`. Each command is a class in
  # lib/heapcapture/cli/<command>.rb that registers itself with CLI.register; all are loaded here.
  class CLI
    EXIT_OK = 0
    EXIT_FAILED = 1
    EXIT_USAGE = 2

    Command = Struct.new(:name, :klass, :summary)

    class << self
      # What the command line logs: the library's lines go to err, warnings only, unless
      # HEAPCAPTURE_VERBOSE is set (results go to stdout).
      def quiet_logger(err)
        Logger.new(err).tap do |logger|
          logger.level = ENV["HEAPCAPTURE_VERBOSE"].to_s.empty? ? Logger::WARN : Logger::DEBUG
        end
      end

      def commands
        @commands ||= {}
      end

      def register(name, klass, summary)
        commands[name] = Command.new(name, klass, summary)
      end

      # Runs argv; returns the exit status.
      def start(argv, out: $stdout, err: $stderr)
        new(out: out, err: err).run(argv.dup)
      end
    end

    def initialize(out:, err:)
      @out = out
      @err = err
    end

    def run(argv)
      name = argv.first
      if name.nil? || %w[-h --help help].include?(name)
        @out.puts usage
        return name.nil? ? EXIT_USAGE : EXIT_OK
      end
      if %w[-v --version].include?(name)
        gzip = Dump::GZIP_ENGINE == "isa-l" ? "ISA-L" : "zlib"
        redaction = Dump::REDACTION ? "redaction by libsodium" : "no redaction (built without libsodium)"
        @out.puts "heapcapture #{VERSION} (gzip by #{gzip}, #{redaction}, Ruby #{RUBY_VERSION})"
        return EXIT_OK
      end
      command = self.class.commands[name]
      unless command
        @err.puts Util.prefixed("unknown command #{name.inspect}\n\n#{usage}")
        return EXIT_USAGE
      end
      # The app's logger when it chose one (the Rake task in a Rails app); else the quiet one.
      HeapCapture.config.logger = self.class.quiet_logger(@err) unless HeapCapture.config.logger_chosen?
      command.klass.new(out: @out, err: @err).run(argv.drop(1))
    rescue OptionParser::ParseError, ArgumentError => e
      @err.puts "#{Util.prefixed(e.message)} (see heapcapture #{name} --help)"
      EXIT_USAGE
    rescue HeapCapture::Error => e
      @err.puts Util.prefixed(e.message)
      EXIT_FAILED
    end

    def usage
      width = self.class.commands.keys.map(&:size).max || 0
      lines = self.class.commands.values.sort_by(&:name).map { |c| "  #{c.name.ljust(width)}  #{c.summary}" }
      <<~USAGE
        Usage: heapcapture COMMAND [options]

        Commands:
        #{lines.join("\n")}

        heapcapture COMMAND --help shows a command's options. The database comes from
        HEAPCAPTURE_DATABASE_URL or DATABASE_URL.
      USAGE
    end
  end
end

Dir[File.join(__dir__, "cli", "*.rb")].sort.each { |file| require file }
