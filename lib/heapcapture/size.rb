# frozen_string_literal: true

module HeapCapture
  # Byte counts as people read them: "12.3 MiB (12897345 bytes)", or "512 MB" in a result line or
  # a memory figure; counts as "1,234,567".
  module Size
    UNITS = %w[bytes KiB MiB GiB TiB].freeze

    module_function

    def human(bytes)
      return "#{bytes} bytes" if bytes < 1024

      exponent = [(Math.log(bytes) / Math.log(1024)).floor, UNITS.size - 1].min
      format("%.1f %s", bytes.to_f / (1024**exponent), UNITS[exponent])
    end

    def both(bytes) = bytes < 1024 ? human(bytes) : "#{human(bytes)}, #{bytes} bytes"

    def megabytes(bytes) = "#{(bytes / 1024.0 / 1024).round} MB"

    def count(number) = number.to_s.reverse.scan(/\d{1,3}/).join(",").reverse
  end
end
