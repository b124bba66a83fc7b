# frozen_string_literal: true

module HeapCapture
  VERSION = "0.1.0"
end
