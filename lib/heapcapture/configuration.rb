# frozen_string_literal: true

require "tmpdir"
require "logger"
require_relative "configuration/values"

module HeapCapture
  # Every setting, with its environment default (see README "Settings"). Reading happens when the
  # configuration is made; HeapCapture.configure or keyword settings override single values.
  class Configuration
    SETTINGS = %i[database_url destination region endpoint access_key_id secret_access_key
                  session_token compression mode trace_allocations memory_limit redact every rss_above
                  rss_interval rss_strikes rss_backoff rss_growth min_interval signal_key encrypt_to sse
                  sse_kms_key_id suspect_share report_html tmpdir part_size concurrency logger].freeze
    COMPRESSIONS = %i[gzip none].freeze
    MODES = %i[auto fork inline].freeze
    REDACTIONS = %i[none strings].freeze
    MIB = 1024 * 1024
    # "536870912", "512MB", "512 MiB", "1.5GB", "2G": K, M, G, T count 1024s, as Heroku and cgroups do.
    SIZE = /\A\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*\z/i
    SIZE_UNITS = { nil => 1, "k" => 1024, "m" => MIB, "g" => 1024 * MIB, "t" => 1024 * 1024 * MIB }.freeze
    # "30", "30s", "30m", "1h", "1.5h", "2d": seconds.
    DURATION = /\A\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*\z/i
    DURATION_UNITS = { "" => 1, "s" => 1, "m" => 60, "h" => 3600, "d" => 86_400 }.freeze
    MIN_INTERVAL = 60 # seconds: a storm of signals does not become a stream of captures
    PERCENT = /\A\s*(\d+(?:\.\d+)?)\s*%\s*\z/
    POSTGRES_URL = %r{\Apostgres(?:ql)?://}i
    CONNINFO = /\A\s*\w+\s*=/ # "host=db dbname=app ..."

    attr_accessor(*SETTINGS)

    def initialize(env = ENV)
      @database_url = first(env, "HEAPCAPTURE_DATABASE_URL", "DATABASE_URL")
      @destination = first(env, "HEAPCAPTURE_DESTINATION") ||
                     (bucket = first(env, "AWS_S3_BUCKET_NAME")) && "s3://#{bucket}/"
      @region = first(env, "AWS_REGION", "AWS_DEFAULT_REGION") || "us-east-1"
      @endpoint = first(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
      @access_key_id = first(env, "AWS_ACCESS_KEY_ID")
      @secret_access_key = first(env, "AWS_SECRET_ACCESS_KEY")
      @session_token = first(env, "AWS_SESSION_TOKEN")
      @compression = symbol_setting(first(env, "HEAPCAPTURE_COMPRESSION") || "gzip", COMPRESSIONS,
                                    "HEAPCAPTURE_COMPRESSION")
      @mode = symbol_setting(first(env, "HEAPCAPTURE_MODE") || "auto", MODES, "HEAPCAPTURE_MODE")
      @memory_limit = (limit = first(env, "HEAPCAPTURE_MEMORY_LIMIT")) && self.class.bytes!(limit, "HEAPCAPTURE_MEMORY_LIMIT")
      @trace_allocations = tracing_setting(first(env, "HEAPCAPTURE_TRACE") || "sampled", "HEAPCAPTURE_TRACE")
      @redact = symbol_setting(first(env, "HEAPCAPTURE_REDACT") || "none", REDACTIONS, "HEAPCAPTURE_REDACT")
      automatic_from(env)
      protection_from(env)
      @suspect_share = self.class.share!(first(env, "HEAPCAPTURE_SUSPECT_SHARE") || Summary::SUSPECT_SHARE,
                                         "HEAPCAPTURE_SUSPECT_SHARE")
      @report_html = self.class.boolean!(first(env, "HEAPCAPTURE_REPORT_HTML") || false, "HEAPCAPTURE_REPORT_HTML")
      @tmpdir = first(env, "HEAPCAPTURE_TMPDIR", "TMPDIR") || Dir.tmpdir
      @part_size = 8 * MIB
      @concurrency = 4
      @logger = nil
    end

    # Applies keyword settings (from exclusive, capture, ...): unknown names are an ArgumentError.
    def apply(settings)
      settings.each do |name, value|
        raise ArgumentError, Util.prefixed("unknown setting #{name.inspect} (known: #{SETTINGS.join(', ')})") \
          unless SETTINGS.include?(name.to_sym)

        public_send("#{name}=", value)
      end
      self
    end

    def compression=(value)
      @compression = symbol_setting(value, COMPRESSIONS, "compression")
    end

    def mode=(value)
      @mode = symbol_setting(value, MODES, "mode")
    end

    def memory_limit=(value)
      @memory_limit = value.nil? ? nil : self.class.bytes!(value, "memory_limit")
    end

    def redact=(value)
      @redact = symbol_setting(value, REDACTIONS, "redact")
    end

    # Automatic captures (autocapture.rb): a period, and the RSS watch.
    def every=(value)
      @every = self.class.seconds_or_off!(value, "every")
    end

    # Seconds (Float) a signalled capture must wait after the last one ended, or 0 (off).
    def min_interval=(value)
      @min_interval = self.class.seconds_or_zero!(value, "min_interval")
    end

    # The key signals are signed with (Signing), at least SignalAuth::KEY_MIN bytes, or nil.
    def signal_key=(value)
      @signal_key = value.nil? || value.to_s.empty? ? nil : self.class.signal_key!(value)
    end

    # The age recipients every stored dump and summary is encrypted to (public keys, "age1...": an
    # Array, or one String of them comma-separated), or nil: stored as they are (Age.recipients!).
    def encrypt_to=(value)
      @encrypt_to = Age.recipients!(value, "encrypt_to")
    end

    # S3 server-side encryption asked for on every stored object: "aws:kms", "AES256" or nil.
    def sse=(value)
      @sse = value.nil? || value.to_s.strip.empty? ? nil : self.class.sse!(value)
    end

    # The KMS key for sse "aws:kms" (its id, ARN or alias), or nil for the bucket's default key.
    def sse_kms_key_id=(value)
      @sse_kms_key_id = value.nil? || value.to_s.strip.empty? ? nil : value.to_s.strip
    end

    # Whether a capture stores its report as a page beside the dump (KEY.report.html, ReportPage).
    def report_html=(value)
      @report_html = self.class.boolean!(value, "report_html")
    end

    def rss_above=(value)
      @rss_above = off?(value) ? nil : self.class.size_or_percent!(value, "rss_above")
    end

    def rss_interval=(value)
      @rss_interval = self.class.seconds!(value, "rss_interval")
    end

    def rss_strikes=(value)
      @rss_strikes = self.class.count!(value, "rss_strikes")
    end

    def rss_backoff=(value)
      @rss_backoff = self.class.seconds!(value, "rss_backoff")
    end

    def rss_growth=(value)
      @rss_growth = off?(value) ? nil : self.class.bytes!(value, "rss_growth")
    end

    def trace_allocations=(value)
      @trace_allocations = tracing_setting(value, "trace_allocations")
    end

    # The share of the retained heap from which a retainer is a leak suspect (heap_retention.c).
    def suspect_share=(value)
      @suspect_share = self.class.share!(value, "suspect_share")
    end

    def part_size=(value)
      @part_size = self.class.part_size!(value)
    end

    def concurrency=(value)
      @concurrency = self.class.concurrency!(value)
    end

    extend Values

    # Rails.logger when Rails is loaded, else a Logger on $stdout that flushes every line.
    def logger
      @logger ||= rails_logger || Logger.new(FlushedStdout.new)
    end

    def logger=(value)
      @logger_set = !value.nil?
      @logger = value
    end

    # Whether the app chose where lines go (a logger given, or Rails's) rather than the default.
    def logger_chosen? = @logger_set || !rails_logger.nil?

    # The database URL, or a ConfigurationError that says how to give one. libpq takes a string it
    # cannot read as a URL for a database name ("mysql://..." or "postgres//host/db" then fails
    # about a local socket): only postgres:// and postgresql:// URLs and key=value conninfo
    # strings are taken.
    def database_url!
      url = database_url || raise(ConfigurationError,
                                  "heapcapture: no database to listen on or signal through: set DATABASE_URL " \
                                  "(or HEAPCAPTURE_DATABASE_URL), or pass database_url:")
      return url if POSTGRES_URL.match?(url) || CONNINFO.match?(url)

      shown = Redact.url(url).sub(%r{\A([^/@\s]*//)?([^:/@\s]*):[^@\s]*@}, '\1\2:***@')
      raise ConfigurationError, "database_url #{shown.inspect} is neither a PostgreSQL URL " \
                                "(postgres://user:password@host:5432/dbname) nor a conninfo string " \
                                "(host=... dbname=...); set DATABASE_URL (or HEAPCAPTURE_DATABASE_URL) to one"
    end

    def to_h
      SETTINGS.to_h { |name| [name, public_send(name)] }
    end

    def inspect
      shown = to_h.except(:logger)
      shown[:secret_access_key] = "***" if shown[:secret_access_key]
      shown[:session_token] = "***" if shown[:session_token]
      shown[:signal_key] = "***" if shown[:signal_key]
      shown[:database_url] = Redact.url(shown[:database_url]) if shown[:database_url]
      "#<HeapCapture::Configuration #{shown.map { |k, v| "#{k}=#{v.inspect}" }.join(' ')}>"
    end

    private

    # An optional size left unset: nil or "off".
    def off?(value) = value.nil? || value.to_s.strip.downcase == "off"

    # Who may signal and how dumps are kept (doc/security.md), from the environment.
    def protection_from(env)
      self.min_interval = first(env, "HEAPCAPTURE_MIN_INTERVAL") || MIN_INTERVAL
      self.signal_key = first(env, "HEAPCAPTURE_SIGNAL_KEY")
      @encrypt_to = Age.recipients!(first(env, "HEAPCAPTURE_ENCRYPT_TO"), "HEAPCAPTURE_ENCRYPT_TO")
      self.sse = first(env, "HEAPCAPTURE_SSE")
      self.sse_kms_key_id = first(env, "HEAPCAPTURE_SSE_KMS_KEY_ID")
    end

    # every and the RSS watch from the environment (all off unless set).
    def automatic_from(env)
      self.every = first(env, "HEAPCAPTURE_EVERY")
      self.rss_above = first(env, "HEAPCAPTURE_RSS_ABOVE")
      self.rss_interval = first(env, "HEAPCAPTURE_RSS_INTERVAL") || 30
      self.rss_strikes = first(env, "HEAPCAPTURE_RSS_STRIKES") || 3
      self.rss_backoff = first(env, "HEAPCAPTURE_RSS_BACKOFF") || 3600
      self.rss_growth = first(env, "HEAPCAPTURE_RSS_GROWTH")
    end

    def first(env, *names)
      names.each do |name|
        value = env[name]
        return value unless value.nil? || value.strip.empty?
      end
      nil
    end

    def rails_logger
      ::Rails.logger if defined?(::Rails) && ::Rails.respond_to?(:logger)
    end

    def symbol_setting(value, allowed, name)
      sym = value.to_s.strip.downcase.to_sym
      return sym if allowed.include?(sym)

      raise ConfigurationError, "#{name} must be one of #{allowed.join(', ')}, got #{value.inspect}"
    end

    # :sampled (heapcapture's sampled tracer), :full (ObjectSpace's tracer on while armed) or :off;
    # true and false as before (full and off).
    def tracing_setting(value, name)
      case value.to_s.strip.downcase
      when "sampled" then :sampled
      when "full", "true", "1", "yes", "on" then :full
      when "off", "false", "0", "no" then :off
      else raise ConfigurationError, "#{name} must be sampled, full or off (or true, false), got #{value.inspect}"
      end
    end
  end
end
