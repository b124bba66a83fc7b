# frozen_string_literal: true

require "logger"

module HeapCapture
  # One line per event, prefixed "heapcapture:", through the configured logger; never a password.
  module Log
    module_function

    def info(message) = write(:info, message)
    def warn(message) = write(:warn, message)
    def error(message) = write(:error, message)
    def debug(message) = write(:debug, message)

    def write(level, message)
      # UTF-8 first: invalid bytes would make the redaction's regexps raise, losing the whole line.
      HeapCapture.config.logger.public_send(level, Util.prefixed(Redact.text(Util.utf8_scrubbed(message.to_s))))
    rescue StandardError
      nil # logging must never break the host application
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

    # $stdout is not ours to close
    def close; end
  end

  # Removes credentials from anything that is about to be shown to a person.
  module Redact
    module_function

    # postgres://user:secret@host/db -> postgres://user:***@host/db (also in key=value conninfo)
    def text(str)
      str.gsub(%r{(\w+://[^/\s:@]*:)[^@\s/]*@}, '\1***@').gsub(/(password\s*=\s*)('[^']*'|\S+)/i, '\1***')
    end
    alias url text
    module_function :url
  end
end
