# frozen_string_literal: true

require "logger"

module HeapCapture
  # One line per event, prefixed "heapcapture:", through the configured logger; never a password.
  module Log
    PREFIX = "heapcapture: "

    module_function

    def info(message) = write(:info, message)
    def warn(message) = write(:warn, message)
    def error(message) = write(:error, message)
    def debug(message) = write(:debug, message)

    def write(level, message)
      HeapCapture.config.logger.public_send(level, PREFIX + Redact.text(utf8(message.to_s)))
    rescue StandardError
      nil # logging must never break the host application
    end

    # Lines are UTF-8. Bytes that are not (a binary payload, a truncated character) become U+FFFD
    # instead of making the redaction's regexps raise, which lost the whole line.
    def utf8(text)
      case text.encoding
      when Encoding::UTF_8 then text.valid_encoding? ? text : text.scrub
      when Encoding::BINARY, Encoding::US_ASCII then text.dup.force_encoding(Encoding::UTF_8).scrub
      else text.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
      end
    end
  end

  # The default logger's device: $stdout (whatever it is at the time of the write), flushed after
  # every line. Ruby buffers $stdout when it is a pipe (Heroku, systemd, docker), and a plain
  # Logger.new($stdout) then holds lines back until the buffer fills, a fork or exit.
  class FlushedStdout
    def write(*parts)
      written = $stdout.write(*parts)
      $stdout.flush
      written
    end

    def close; end # $stdout is not ours to close
  end

  # Removes credentials from anything that is about to be shown to a person.
  module Redact
    module_function

    # postgres://user:secret@host/db -> postgres://user:***@host/db (also in key=value conninfo)
    def text(str)
      str.gsub(%r{(\w+://[^/\s:@]*:)[^@\s/]*@}, '\1***@').gsub(/(password\s*=\s*)('[^']*'|\S+)/i, '\1***')
    end
    alias_method :url, :text
    module_function :url
  end
end
