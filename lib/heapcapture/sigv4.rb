# frozen_string_literal: true

module HeapCapture
  # AWS Signature Version 4, S3 flavour: HeapCapture::SigV4.sign (Authorization header) and
  # HeapCapture::SigV4.presign (query-string auth). The signing is done in C
  # (ext/heapcapture/sigv4.c); this file turns the keyword arguments into the plain Strings,
  # [name, value] Arrays and Integers the private C methods _sign and _presign take, and reports
  # bad arguments by name.
  module SigV4
    UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
    MAX_EXPIRES_IN = 604_800 # seven days, S3's limit
    LAST_SECOND = 253_402_300_799 # 9999-12-31T23:59:59Z

    class << self
      # => { canonical_request:, string_to_sign:, signature:,
      #      headers: { "authorization" =>, "x-amz-date" =>, "x-amz-security-token" => (with a token) } }
      def sign(method:, host:, path:, payload_sha256:, region:, service:, access_key_id:, secret_access_key:,
               time:, query: [], headers: {}, session_token: nil)
        akid, secret, token = credentials("sign", access_key_id, secret_access_key, session_token)
        _sign(http_method("sign", method), text("sign", :host, host), text("sign", :path, path),
              pairs("sign", :query, query, empty_value: true), pairs("sign", :headers, headers, empty_value: false),
              text("sign", :payload_sha256, payload_sha256), text("sign", :region, region),
              text("sign", :service, service), akid, secret, token, epoch("sign", time))
      end

      # => { canonical_request:, string_to_sign:, signature:, query: [[name, value], ...],
      #      query_string: "X-Amz-Algorithm=...&X-Amz-Signature=..." }
      # query holds the caller's pairs and the X-Amz-* ones, sorted, X-Amz-Signature last.
      def presign(method:, host:, path:, region:, access_key_id:, secret_access_key:, time:, query: [],
                  service: "s3", session_token: nil, expires_in: 3600)
        akid, secret, token = credentials("presign", access_key_id, secret_access_key, session_token)
        unless expires_in.is_a?(Integer) && expires_in.between?(1, MAX_EXPIRES_IN)
          raise ArgumentError, Util.prefixed("SigV4.presign: expires_in must be an Integer from 1 to " \
                                             "#{MAX_EXPIRES_IN} seconds (got #{expires_in.inspect})")
        end

        _presign(http_method("presign", method), text("presign", :host, host), text("presign", :path, path),
                 pairs("presign", :query, query, empty_value: true), text("presign", :region, region),
                 text("presign", :service, service), akid, secret, token, epoch("presign", time), expires_in)
      end

      private

      def http_method(op, value)
        value = value.to_s.upcase if value.is_a?(Symbol)
        text(op, :method, value)
      end

      # A non-blank String (a Symbol is taken as its name), in an ASCII-compatible encoding.
      def text(op, name, value, blank_ok: false)
        value = value.to_s if value.is_a?(Symbol)
        raise ArgumentError, Util.prefixed("SigV4.#{op}: #{name} must be a String (got #{value.class})") \
          unless value.is_a?(String)

        value = value.encode(Encoding::UTF_8) unless value.encoding.ascii_compatible?
        bytes = value.b # checks that work on any bytes, valid in their encoding or not
        raise ArgumentError, Util.prefixed("SigV4.#{op}: #{name} is blank") if !blank_ok && bytes.strip.empty?
        raise ArgumentError, Util.prefixed("SigV4.#{op}: #{name} contains a NUL byte") if bytes.include?("\0")

        value
      rescue EncodingError => e
        raise ArgumentError, Util.prefixed("SigV4.#{op}: #{name} cannot be converted to UTF-8 (#{e.message})")
      end

      # A value inside query or headers: Strings, Symbols and numbers are signed as text.
      def pair_value(op, name, key, value, empty_value)
        value = "" if value.nil? && empty_value
        value = value.to_s if value.is_a?(Numeric) || value.is_a?(Symbol)
        unless value.is_a?(String)
          raise ArgumentError, Util.prefixed("SigV4.#{op}: #{name} value for #{key.inspect} must be a String " \
                                             "(got #{value.class})")
        end
        text(op, "#{name} value for #{key.inspect}", value, blank_ok: true)
      end

      # A Hash (a value may be an Array for a repeated name) or an Array of [name, value] pairs
      # => [[String, String], ...] in the given order.
      def pairs(op, name, list, empty_value:)
        list = [] if list.nil?
        entries =
          case list
          when Hash then list.flat_map { |k, v| v.is_a?(Array) ? v.map { |e| [k, e] } : [[k, v]] }
          when Array then list
          else raise ArgumentError, Util.prefixed("SigV4.#{op}: #{name} must be a Hash or an Array of " \
                                                  "[name, value] pairs (got #{list.class})")
          end
        entries.each_with_index.map do |pair, i|
          unless pair.is_a?(Array) && pair.size == 2
            raise ArgumentError, Util.prefixed("SigV4.#{op}: #{name}[#{i}] must be a [name, value] pair " \
                                               "(got #{pair.inspect[0, 80]})")
          end
          key = text(op, "#{name}[#{i}] name", pair[0], blank_ok: name == :query)
          [key, pair_value(op, name, key, pair[1], empty_value)]
        end
      end

      def epoch(op, time)
        seconds =
          case time
          when Time then time.to_i # seconds since the epoch are the same in every zone
          when Integer then time
          else raise ArgumentError, Util.prefixed("SigV4.#{op}: time must be a Time or Integer epoch seconds " \
                                                  "(got #{time.class})")
          end
        unless seconds.between?(0, LAST_SECOND)
          raise ArgumentError, Util.prefixed("SigV4.#{op}: time #{time.inspect} is out of range (1970 to 9999)")
        end

        seconds
      end

      # Credentials come from settings or the environment: a blank one is a configuration error.
      def credentials(op, access_key_id, secret_access_key, session_token)
        akid = credential(op, :access_key_id, "AWS_ACCESS_KEY_ID", access_key_id)
        if akid.b.match?(%r{[\s/[:cntrl:]]})
          raise ConfigurationError, "SigV4.#{op}: access_key_id holds a space, '/' or control " \
                                    "character; check AWS_ACCESS_KEY_ID"
        end
        secret = credential(op, :secret_access_key, "AWS_SECRET_ACCESS_KEY", secret_access_key)
        token = nil
        unless session_token.nil? || (session_token.is_a?(String) && session_token.empty?)
          token = credential(op, :session_token, "AWS_SESSION_TOKEN", session_token)
          if token.b.match?(/[[:cntrl:]&&[^\t]]/)
            raise ConfigurationError, "SigV4.#{op}: session_token holds a control character; " \
                                      "check AWS_SESSION_TOKEN"
          end
        end
        [akid, secret, token]
      end

      def credential(op, name, env, value)
        unless value.is_a?(String)
          raise ConfigurationError, "SigV4.#{op}: #{name} is #{value.nil? ? 'missing' : "a #{value.class}"}; " \
                                    "set #{env} or pass #{name}: as a String"
        end
        bytes = value.b
        raise ConfigurationError, "SigV4.#{op}: #{name} is blank; set #{env} or pass #{name}:" \
          if bytes.strip.empty?
        raise ConfigurationError, "SigV4.#{op}: #{name} contains a NUL byte; check #{env}" \
          if bytes.include?("\0")

        value
      end
    end
  end
end
