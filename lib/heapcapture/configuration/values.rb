# frozen_string_literal: true

module HeapCapture
  class Configuration
    # The checks of setting values (Configuration.bytes!, .seconds!, ...), each in this one place
    # for the settings, the environment and the classes that take the same values.
    module Values
      # The S3 limits, checked in this one place for the settings and S3::Client.new alike, with the
      # numbers ext/heapcapture/s3.h states (exported as HeapCapture::S3::MIN_PART_SIZE ...).
      def part_size!(value)
        return value if value.is_a?(Integer) && value.between?(S3::MIN_PART_SIZE, S3::MAX_PART_SIZE)

        raise ConfigurationError, "part_size must be an Integer from #{S3::MIN_PART_SIZE / MIB} MiB " \
                                  "(S3's minimum) to #{S3::MAX_PART_SIZE / MIB / 1024} GiB, got #{value.inspect}"
      end

      # A size in bytes from an Integer or a String such as "512MB" (SIZE), above 0.
      def bytes!(value, name)
        bytes = if value.is_a?(Integer) then value
                elsif (m = SIZE.match(value.to_s)) then (m[1].to_f * SIZE_UNITS.fetch(m[2]&.downcase)).round
                end
        return bytes if bytes&.positive?

        raise ConfigurationError, "#{name} must be a size in bytes above 0 (536870912, \"512MB\", \"1.5GB\"), " \
                                  "got #{value.inspect}"
      end

      # Seconds above 0 from a Numeric or "30", "30s", "30m", "1h" (DURATION).
      def seconds!(value, name)
        seconds = if value.is_a?(Numeric) then value
                  elsif (m = DURATION.match(value.to_s)) then m[1].to_f * DURATION_UNITS.fetch(m[2].downcase)
                  end
        return seconds if seconds.is_a?(Numeric) && seconds.finite? && seconds.positive?

        raise ConfigurationError, "#{name} must be a duration above 0 (seconds, or \"30m\", \"1h\"), got #{value.inspect}"
      end

      # Seconds from 0 up (a Float): a duration as seconds! takes, or 0, "0", "off" for none.
      def seconds_or_zero!(value, name)
        return 0.0 if value.is_a?(Numeric) && value.zero? && value.finite?
        return 0.0 if %w[0 off false none].include?(value.to_s.strip.downcase)

        seconds!(value, name).to_f
      rescue ConfigurationError
        raise ConfigurationError, "#{name} must be a duration (seconds, or \"30s\", \"1m\"), or 0 for none, " \
                                  "got #{value.inspect}"
      end

      def seconds_or_off!(value, name)
        value.nil? || %w[off false none].include?(value.to_s.strip.downcase) ? nil : seconds!(value, name)
      end

      # Bytes (an Integer), or a share of the memory limit (a Float above 0 up to 1) from "85%".
      def size_or_percent!(value, name)
        if (m = PERCENT.match(value.to_s))
          share = m[1].to_f / 100
          return share if share.positive? && share <= 1

          raise ConfigurationError, "#{name} as a share of the memory limit must be above 0% and at most 100%, " \
                                    "got #{value.inspect}"
        end
        return bytes!(value, name) if value.is_a?(Integer) || SIZE.match?(value.to_s)

        raise ConfigurationError, "#{name} must be a size (838860800, \"800MB\") or a share of the memory limit " \
                                  "(\"85%\"), got #{value.inspect}"
      end

      BOOLEANS = { "true" => true, "1" => true, "yes" => true, "on" => true,
                   "false" => false, "0" => false, "no" => false, "off" => false, "" => false }.freeze

      # true or false, from themselves, nil (false) or "true"/"false", "1"/"0", "yes"/"no", "on"/"off".
      def boolean!(value, name)
        return value if [true, false].include?(value)
        return false if value.nil?

        found = BOOLEANS[value.to_s.strip.downcase]
        return found unless found.nil?

        raise ConfigurationError, "#{name} must be true or false (or 1/0, yes/no, on/off), got #{value.inspect}"
      end

      # A share above 0 and at most 1 from a Numeric or "0.1" (not "10%": that is size_or_percent!'s).
      def share!(value, name)
        share = value.is_a?(Numeric) ? value.to_f : Float(value.to_s.strip, exception: false)
        return share if share.is_a?(Float) && share.positive? && share <= 1

        raise ConfigurationError, "#{name} must be a share of the retained heap above 0 and at most 1 (0.1 for 10%), " \
                                  "got #{value.inspect}"
      end

      # A signal key: a String of at least SignalAuth::KEY_MIN bytes (its value never in the message).
      def signal_key!(value)
        key = value.is_a?(String) ? value : nil
        return key.b if key && key.bytesize >= SignalAuth::KEY_MIN

        raise ConfigurationError, "signal_key (HEAPCAPTURE_SIGNAL_KEY) must be a String of at least " \
                                  "#{SignalAuth::KEY_MIN} bytes (openssl rand -hex 32 makes one), got " \
                                  "#{key ? "#{key.bytesize} bytes" : value.class}"
      end

      SSE = ["aws:kms", "AES256"].freeze

      # S3's server-side encryption names, as S3 spells them ("aes256" and "AWS:KMS" are taken).
      def sse!(value)
        name = SSE.find { |known| known.casecmp?(value.to_s.strip) }
        return name if name

        raise ConfigurationError, "sse (HEAPCAPTURE_SSE) must be aws:kms or AES256, got #{value.inspect}"
      end

      def count!(value, name)
        count = value.is_a?(Integer) ? value : Integer(value.to_s.strip, exception: false)
        return count if count&.positive?

        raise ConfigurationError, "#{name} must be a whole number above 0, got #{value.inspect}"
      end

      def concurrency!(value) = in_range!(value, "concurrency", S3::MAX_CONCURRENCY)
      def max_attempts!(value) = in_range!(value, "max_attempts", S3::MAX_ATTEMPTS)

      private

      def in_range!(value, name, max)
        return value if value.is_a?(Integer) && value.between?(1, max)

        raise ConfigurationError, "#{name} must be an Integer from 1 to #{max}, got #{value.inspect}"
      end
    end
  end
end
