# frozen_string_literal: true

module HeapCapture
  # The small helpers the Ruby side shares, in one place.
  module Util
    module_function

    # Every message we raise, log or print starts with this once, so a reader of a mixed log knows
    # who spoke. Our Error classes add it themselves (errors.rb); Ruby's own classes get it here.
    PREFIX = "heapcapture: "

    def prefixed(text) = text.start_with?(PREFIX) ? text : PREFIX + text
    def unprefixed(text) = text.delete_prefix(PREFIX)

    # Seconds on the monotonic clock, for deadlines and durations.
    def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)

    # A tempfile's path in tmpdir as the Ruby side names them: heapcapture-PID-HEX16SUFFIX, as
    # dump_tempfile.c names the dump's, so that Capture::ORPHAN finds what a killed process left.
    def tempfile_path(tmpdir, suffix) = File.join(tmpdir, "heapcapture-#{Process.pid}-#{format('%016x', rand(1 << 64))}#{suffix}")

    # str labelled UTF-8 without changing a byte (binary and ASCII strings are relabelled, another
    # encoding is converted); it may be invalid: the caller decides (a signal payload is refused).
    def utf8(str)
      if [Encoding::UTF_8, Encoding::BINARY, Encoding::US_ASCII].include?(str.encoding)
        str.dup.force_encoding(Encoding::UTF_8)
      else
        str.encode(Encoding::UTF_8)
      end
    rescue EncodingError
      str.dup.force_encoding(Encoding::UTF_8)
    end

    # str as valid UTF-8 for a log line or a reply: what is not (a binary payload, a truncated
    # character) becomes U+FFFD, or "?" for a character another encoding has and UTF-8 lacks.
    def utf8_scrubbed(str)
      case str.encoding
      when Encoding::UTF_8 then str.valid_encoding? ? str : str.scrub
      when Encoding::BINARY, Encoding::US_ASCII then str.dup.force_encoding(Encoding::UTF_8).scrub
      else str.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
      end
    end
  end
end
